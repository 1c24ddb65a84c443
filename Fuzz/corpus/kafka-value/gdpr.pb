


player-2mygameevt-7*mygame