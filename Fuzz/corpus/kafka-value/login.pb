



player-2evt-5*mygameJplayer-2