/*
 * libslowdns.so, preloaded into kube-get by tests/kube/test_client.py: a name lookup of a host
 * under ".slow.test" takes 3 seconds and fails (a resolver that does not answer in time); every
 * other lookup goes to the C library's getaddrinfo.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    size_t n = node ? strlen(node) : 0;
    if (n >= 10 && strcmp(node + n - 10, ".slow.test") == 0) {
        sleep(3);
        return EAI_AGAIN;
    }
    int (*next)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(
            RTLD_NEXT, "getaddrinfo");
    return next ? next(node, service, hints, res) : EAI_FAIL;
}
