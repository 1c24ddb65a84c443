# Sourced by the scripts that start servers (postgres.sh, redis.sh).
#
# Runs "$@" without the calling script's inherited descriptors above stderr. The server outlives
# the script: a descriptor it inherited (a caller's pipe or socket) would stay open as long as the
# server runs, and a caller waiting for EOF on it, or for its peer to close, would wait forever
# (Foundation.Process on Linux learns that its child exited from exactly such a descriptor).
without_inherited_fds() {
  (
    if [ -d "/proc/$BASHPID/fd" ]; then
      for fd in "/proc/$BASHPID/fd/"*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
      done
    fi
    "$@"
  )
}
