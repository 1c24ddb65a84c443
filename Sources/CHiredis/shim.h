// hiredis 0.14 (Debian's libhiredis-dev): the Redis module's C library.
#include <sys/time.h>
#include <hiredis/hiredis.h>
