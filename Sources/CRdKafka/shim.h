// librdkafka (Debian's librdkafka-dev) and its mock cluster. rdkafka_mock.h must come after
// rdkafka.h: it refuses to be included on its own.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
