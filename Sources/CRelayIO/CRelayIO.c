#define _GNU_SOURCE
#include "CRelayIO.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

int crelay_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int crelay_epoll_add(int epoll, int fd) {
    struct epoll_event event;
    memset(&event, 0, sizeof(event));
    event.events = EPOLLIN;
    event.data.fd = fd;
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

int crelay_epoll_remove(int epoll, int fd) {
    return epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
}

int crelay_epoll_wait(int epoll, int *fds, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int ready = epoll_wait(epoll, events, max, timeout_ms);
    for (int i = 0; i < ready; i++) fds[i] = events[i].data.fd;
    return ready;
}

int crelay_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int crelay_recv_batch(int fd, void *buffers, size_t capacity, int count,
                      struct sockaddr_storage *senders, unsigned int *lengths, int *truncated) {
    struct mmsghdr headers[64];
    struct iovec vectors[64];
    if (count > 64) count = 64;
    memset(headers, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = (char *)buffers + (size_t)i * capacity;
        vectors[i].iov_len = capacity;
        headers[i].msg_hdr.msg_name = &senders[i];
        headers[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        headers[i].msg_hdr.msg_iov = &vectors[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    int received = recvmmsg(fd, headers, (unsigned int)count, MSG_DONTWAIT, NULL);
    for (int i = 0; i < received; i++) {
        lengths[i] = headers[i].msg_len;
        truncated[i] = (headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    }
    return received;
}
