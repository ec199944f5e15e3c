/*
 * progress.c: rep_progress, the line on stderr that says a long run is
 * still going ("poolbench: merged, repeat 1 of 3: 4 s"), from one second
 * into a repetition (report.h).
 *
 * It cannot be a thread: the engine refuses to create a pool while the
 * process has a second thread. So it is a POSIX timer aimed at the calling
 * thread (SIGEV_THREAD_ID, so the signal never lands on the engine's
 * threads), and a signal handler installed with SA_RESTART that does only
 * async-signal-safe things (clock_gettime, write, digits made by hand).
 */
#include "report.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Written by rep_progress before the timer is armed, read by the handler. */
static char prog_text[160];
static size_t prog_len;
static double prog_t0;
static volatile sig_atomic_t prog_on, prog_shown;
static timer_t prog_timer;
static bool prog_timer_ok;

/* Async-signal-safe: clock_gettime, write, and hand-made digits. */
static void prog_tick(int sig)
{
    (void)sig;
    if (!prog_on)
        return;
    int saved = errno;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long secs = (long)((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - prog_t0);
    char buf[sizeof prog_text + 40], digits[24];
    size_t n = 0, d = 0;
    buf[n++] = '\r';
    memcpy(buf + n, prog_text, prog_len);
    n += prog_len;
    do
        digits[d++] = (char)('0' + secs % 10);
    while ((secs /= 10) > 0 && d < sizeof digits);
    while (d > 0)
        buf[n++] = digits[--d];
    memcpy(buf + n, " s\033[K", 5);
    n += 5;
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
    prog_shown = 1;
    errno = saved;
}

static void prog_arm(double first, double every)
{
    struct itimerspec its = {
        .it_value = {(time_t)first, (long)((first - (double)(time_t)first) * 1e9)},
        .it_interval = {(time_t)every, 0},
    };
    timer_settime(prog_timer, 0, &its, NULL);
}

void rep_progress(void *ctx, const char *label, int rep, int nrep, bool begin)
{
    (void)ctx;
    if (!prog_timer_ok) {
        /* Aimed at this thread (SIGEV_THREAD_ID), so that the signal never
         * lands on the engine's threads; SA_RESTART, so that the calls it
         * interrupts mostly go on by themselves. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = prog_tick;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = SIGALRM;
        sev._sigev_un._tid = gettid();
        if (sigaction(SIGALRM, &sa, NULL) != 0 ||
            timer_create(CLOCK_MONOTONIC, &sev, &prog_timer) != 0)
            return;
        prog_timer_ok = true;
    }
    if (begin) {
        int n = nrep > 1 ? snprintf(prog_text, sizeof prog_text, "poolbench: %s, repeat %d of %d: ",
                                    label, rep, nrep)
                         : snprintf(prog_text, sizeof prog_text, "poolbench: %s: ", label);
        prog_len = n < 0 ? 0 : (size_t)n < sizeof prog_text ? (size_t)n : sizeof prog_text - 1;
        prog_t0 = pool_now();
        prog_on = 1;
        prog_arm(1.0, 1.0);
    } else {
        prog_on = 0;
        prog_arm(0, 0); /* disarms */
        if (prog_shown) {
            ssize_t w = write(STDERR_FILENO, "\r\033[K", 4);
            (void)w;
            prog_shown = 0;
        }
    }
}
