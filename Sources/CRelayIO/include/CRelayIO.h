#ifndef C_RELAY_IO_H
#define C_RELAY_IO_H

#include <stddef.h>
#include <sys/socket.h>

/// Linux calls the relay's UDP poller needs that Swift's Glibc module does not export
/// (epoll, eventfd and recvmmsg need _GNU_SOURCE or headers outside it).

int crelay_epoll_create(void);
/// Registers `fd` for readability, level-triggered. 0 or -1 (errno set).
int crelay_epoll_add(int epoll, int fd);
int crelay_epoll_remove(int epoll, int fd);
/// Waits up to `timeout_ms`; writes up to `max` ready descriptors to `fds`. Count or -1.
int crelay_epoll_wait(int epoll, int *fds, int max, int timeout_ms);

int crelay_eventfd(void);

/// One recvmmsg of up to `count` datagrams into `count` buffers of `capacity` bytes laid out
/// back to back at `buffers`. For each datagram received: its sender in `senders[i]`, its length
/// in `lengths[i]`, and whether the kernel truncated it in `truncated[i]`. Count, 0 or -1.
int crelay_recv_batch(int fd, void *buffers, size_t capacity, int count,
                      struct sockaddr_storage *senders, unsigned int *lengths, int *truncated);

#endif
