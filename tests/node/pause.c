/* The node's sandbox ("pause") program: PID 1 of each pod's sandbox, holding its namespaces. It
 * sleeps until a signal, reaps whatever children it inherits, and exits on SIGINT or SIGTERM,
 * which is what the kubelet and containerd expect of a sandbox image's entrypoint. Built static by
 * tests/node/images.sh into the image named in containerd's sandbox_image. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void)
{
    struct sigaction stop = {.sa_handler = on_stop};
    struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
    if (getpid() != 1) {
        static const char msg[] = "pause: meant to run as PID 1 of a pod's sandbox\n";
        (void)!write(2, msg, sizeof msg - 1);
    }
    if (sigaction(SIGINT, &stop, NULL) != 0 || sigaction(SIGTERM, &stop, NULL) != 0 ||
        sigaction(SIGCHLD, &child, NULL) != 0) {
        return 1;
    }
    for (;;) {
        pause();
    }
}
