/* The kernel's floor for a server that answers one request per wake-up, as the gRPC path does at
 * 1,000 events/s when calls arrive one per millisecond: epoll_wait, read, write on loopback TCP,
 * and nothing else (no HTTP/2, no NIO, no work). Prints the server's CPU per request.
 *
 *   cc -O2 -o wakeup_floor wakeup_floor.c && ./wakeup_floor [REQUESTS=20000] [INTERVAL_US=1000]
 *
 * A client thread sends a 200-byte request every INTERVAL_US and reads the 40-byte answer; the
 * server thread's CPU (CLOCK_THREAD_CPUTIME_ID) over the run, divided by the requests, is the
 * figure. Sizes are those of an event call and its answer (HEADERS+DATA+trailers). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int requests = 20000, interval_us = 1000, port;
static double server_cpu_us;

static double thread_cpu_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *server(void *arg) {
    int listener = *(int *)arg;
    int conn = accept(listener, NULL, NULL);
    int one = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = conn}, out[8];
    epoll_ctl(ep, EPOLL_CTL_ADD, conn, &ev);
    char buffer[65536], answer[40] = {0};
    double start = thread_cpu_us();
    long received = 0;
    while (received < (long)requests * 200) {
        int n = epoll_wait(ep, out, 8, -1);
        for (int i = 0; i < n; i++) {
            ssize_t got = read(conn, buffer, sizeof buffer);
            if (got <= 0) goto done;
            received += got;
            for (ssize_t k = 0; k < got / 200; k++) write(conn, answer, sizeof answer);
        }
    }
done:
    server_cpu_us = thread_cpu_us() - start;
    close(conn);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) requests = atoi(argv[1]);
    if (argc > 2) interval_us = atoi(argv[2]);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    bind(listener, (struct sockaddr *)&addr, sizeof addr);
    listen(listener, 1);
    getsockname(listener, (struct sockaddr *)&addr, &len);
    pthread_t thread;
    pthread_create(&thread, NULL, server, &listener);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    connect(client, (struct sockaddr *)&addr, sizeof addr);
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char request[200] = {0}, answer[40];
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (int i = 0; i < requests; i++) {
        next.tv_nsec += interval_us * 1000L;
        while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        write(client, request, sizeof request);
        for (size_t got = 0; got < sizeof answer;) {
            ssize_t n = read(client, answer + got, sizeof answer - got);
            if (n <= 0) return 1;
            got += n;
        }
    }
    pthread_join(thread, NULL);
    printf("wakeup floor: %d requests, one per %d us: server CPU %.1f us per request\n", requests, interval_us,
           server_cpu_us / requests);
    return 0;
}
