/*
 * twin_report.c: a scenario's CPython twin, found, run and read back into a
 * run_report (twin_report.h says why: the scenario's checks judge CPython's
 * figures exactly as they judge poolbench's).
 *
 * The twin runs as a child process in a process group of its own, its JSON
 * read from a pipe with poll() until EOF or a deadline; past the deadline,
 * or on SIGINT/SIGTERM (strat_interrupted), the whole group is killed, so
 * that nothing the twin started outlives it. No thread is started: the
 * engine forks pools only from a single-threaded process.
 */
#include "twin_report.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- finding python and the twin ------------------------------------------- */

static bool is_exec(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* $PYTHON, or python3 on PATH. */
static int find_python(twin *t)
{
    const char *env = getenv("PYTHON");
    if (env && *env) {
        snprintf(t->python, sizeof t->python, "%s", env);
        if (is_exec(env))
            return 0;
        snprintf(t->why, sizeof t->why, "$PYTHON (%.200s) is not an executable", env);
        return -1;
    }
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p; p += strcspn(p, ":") + (p[strcspn(p, ":")] != 0)) {
        int n = (int)strcspn(p, ":");
        snprintf(t->python, sizeof t->python, "%.*s/python3", n, p);
        if (n > 0 && is_exec(t->python))
            return 0;
    }
    snprintf(t->why, sizeof t->why, "python3 not found on PATH (set PYTHON to use another)");
    return -1;
}

/* $POOLBENCH_PYTHON_DIR, else bench/python upward from the binary, else ./bench/python. */
static int find_script(twin *t, const char *name)
{
    const char *env = getenv("POOLBENCH_PYTHON_DIR");
    char dir[PATH_MAX - 64] = "";
    if (env && *env) {
        snprintf(t->script, sizeof t->script, "%.3000s/%s.py", env, name);
    } else {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        dir[n > 0 ? n : 0] = '\0';
        t->script[0] = '\0';
        for (int up = 0; up < 5 && strrchr(dir, '/'); up++) {
            *strrchr(dir, '/') = '\0';
            snprintf(t->script, sizeof t->script, "%s/bench/python/%s.py", dir, name);
            if (access(t->script, R_OK) == 0)
                break;
            t->script[0] = '\0';
        }
        if (!t->script[0])
            snprintf(t->script, sizeof t->script, "bench/python/%s.py", name);
    }
    if (access(t->script, R_OK) == 0)
        return 0;
    snprintf(t->why, sizeof t->why, "no CPython twin %.200s", t->script);
    return -1;
}

/* ---- running it ------------------------------------------------------------------ */

/* Reads fd until EOF into a malloc'd string (*out), within t->timeout_s;
 * past it, or on SIGINT/SIGTERM, kills pid's process group. true if killed. */
static bool read_bounded(twin *t, int fd, pid_t pid, char **out)
{
    size_t len = 0, cap = 8192;
    char *buf = malloc(cap);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool killed = false;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left = t->timeout_s - (double)(now.tv_sec - t0.tv_sec) -
                      (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (left <= 0 || strat_interrupted()) {
            kill(-pid, SIGKILL);
            killed = true;
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left > 1 ? 1000 : (int)(left * 1000) + 1) <= 0)
            continue; /* a timeout (check the clock again) or EINTR */
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    return killed;
}

/* argv run with its stdout read into a malloc'd string (*out), within
 * timeout_s, in a process group of its own. The exit status (0..255), or
 * -1 with t->why set. */
static int run_child(twin *t, char *const argv[], char **out)
{
    int fd[2];
    *out = NULL;
    if (pipe(fd) != 0) {
        snprintf(t->why, sizeof t->why, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* its own group: a kill reaches the workers it forked */
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        snprintf(t->why, sizeof t->why, "fork: %s", strerror(errno));
        return -1;
    }
    setpgid(pid, pid); /* also here: whichever of the two runs first */
    bool killed = read_bounded(t, fd[0], pid, out);
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (killed) {
        t->killed = true;
        if (strat_interrupted())
            snprintf(t->why, sizeof t->why, "%.150s: stopped: interrupted", t->script);
        else
            snprintf(t->why, sizeof t->why, "%.150s: killed: no answer after %g s", t->script,
                     t->timeout_s);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int twin_open(twin *t, const char *name)
{
    memset(t, 0, sizeof *t);
    /* One run of the twin at most this long: as poolbench's own run time
     * limit; POOLBENCH_TWIN_TIMEOUT (seconds) changes it (the tests). */
    const char *limit = getenv("POOLBENCH_TWIN_TIMEOUT");
    t->timeout_s = limit && atof(limit) > 0 ? atof(limit) : 900;
    if (find_python(t) != 0 || find_script(t, name) != 0)
        return -1;
    char *argv[] = {t->python, t->script, "--params", NULL}, *out;
    int st = run_child(t, argv, &out);
    if (st != 0) {
        if (st > 0)
            snprintf(t->why, sizeof t->why, "%.150s --params exited with status %d", t->script, st);
        free(out);
        return -1;
    }
    for (char *line = strtok(out, "\n"); line && t->nparams < TWIN_MAX_PARAMS;
         line = strtok(NULL, "\n"))
        t->params[t->nparams++] = strndup(line, strcspn(line, " "));
    free(out);
    char *ver[] = {t->python, "-c", "import platform; print(platform.python_version())", NULL};
    if (run_child(t, ver, &out) == 0)
        snprintf(t->version, sizeof t->version, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    return 0;
}

void twin_close(twin *t)
{
    for (int i = 0; i < t->nparams; i++)
        free(t->params[i]);
    t->nparams = 0;
}

int twin_labels(twin *t, char *buf, size_t len)
{
    char *argv[] = {t->python, t->script, "--list", NULL}, *out;
    int st = run_child(t, argv, &out);
    buf[0] = '\0';
    for (char *line = st == 0 ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"))
        snprintf(buf + strlen(buf), len - strlen(buf), ",%s,", line);
    free(out);
    return st == 0 ? 0 : -1;
}

json_t *twin_run(twin *t, const run_report *r, const char *labels)
{
    char sets[TWIN_MAX_PARAMS][128];
    char *argv[2 * TWIN_MAX_PARAMS + 12];
    int n = 0;
    argv[n++] = t->python;
    argv[n++] = t->script;
    for (int i = 0; i < t->nparams; i++) {
        int k = scn_param_index(r->s, t->params[i]);
        if (k < 0)
            continue; /* the twin's own: its default */
        char v[64];
        scn_num_format(r->p.v[k], v, sizeof v);
        snprintf(sets[i], sizeof sets[i], "%s=%s", t->params[i], v);
        argv[n++] = "--set";
        argv[n++] = sets[i];
    }
    if (labels && *labels) {
        argv[n++] = "--impl";
        argv[n++] = (char *)labels;
    }
    argv[n++] = "--repeat";
    argv[n++] = "1";
    argv[n++] = "--json";
    argv[n++] = "-";
    argv[n] = NULL;
    char *out;
    int st = run_child(t, argv, &out);
    json_error_t je;
    json_t *root = st == 0 ? json_loads(out, 0, &je) : NULL;
    if (st > 0)
        snprintf(t->why, sizeof t->why, "%.150s exited with status %d", t->script, st);
    else if (st == 0 && !json_is_object(root))
        snprintf(t->why, sizeof t->why, "%.120s: its JSON does not parse: %.80s", t->script,
                 je.text);
    free(out);
    if (root && !t->version[0] && json_is_string(json_object_get(root, "python")))
        snprintf(t->version, sizeof t->version, "%s",
                 json_string_value(json_object_get(root, "python")));
    return root;
}

json_t *twin_result(json_t *root, const char *label)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(root, "results"), i, x)
        if (strcmp(json_string_value(json_object_get(x, "label")) ?: "", label) == 0)
            return x;
    return NULL;
}

/* ---- the report ------------------------------------------------------------------- */

double twin_median(double *v, int n)
{
    for (int i = 1; i < n; i++) /* a few values: insertion sort */
        for (int k = i; k > 0 && v[k - 1] > v[k]; k--) {
            double x = v[k];
            v[k] = v[k - 1];
            v[k - 1] = x;
        }
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double jnum(json_t *o, const char *k)
{
    json_t *x = json_object_get(o, k);
    return json_is_number(x) ? json_number_value(x) : 0;
}

static void jstr(json_t *o, const char *k, char *dst, size_t len)
{
    const char *s = json_string_value(json_object_get(o, k));
    snprintf(dst, len, "%s", s ? s : "");
}

/* The counts and strings of a twin result into out. */
static void fill_outcome(json_t *x, strat_outcome *o)
{
    o->startup_s = jnum(x, "startup_s");
    o->answer_s = jnum(x, "answer_s");
    o->stopped_s = jnum(x, "stopped_s");
    o->results = (size_t)jnum(x, "results");
    o->errors = (size_t)jnum(x, "errors");
    o->errors_unobserved = (size_t)jnum(x, "errors_unobserved");
    o->tasks_run = (size_t)jnum(x, "tasks_run");
    o->tasks_total = (size_t)jnum(x, "tasks_total");
    o->tasks_after_stop = (size_t)jnum(x, "tasks_after_stop");
    o->stopped_early = json_is_true(json_object_get(x, "stopped_early"));
    jstr(x, "first_error", o->first_error, sizeof o->first_error);
    jstr(x, "note", o->note, sizeof o->note);
    o->callbacks = (size_t)jnum(x, "callbacks");
    o->callback_pid = (int)jnum(x, "callback_pid");
    o->callbacks_max_overlap = (int)jnum(x, "callbacks_max_overlap");
    o->stats.messages_sent = (uint64_t)jnum(x, "messages_sent");
    o->stats.messages_received = (uint64_t)jnum(x, "messages_received");
    o->stats.bytes_sent = (uint64_t)jnum(x, "bytes_sent");
    o->stats.workers_started = (uint64_t)jnum(x, "workers_started");
    o->stats.worker_deaths = (uint64_t)jnum(x, "worker_deaths");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(x, "facts"), k, v)
        if (json_is_number(v))
            strat_fact_set(o, k, json_number_value(v));
}

static void fill_result(const run_report *pb, const run_result *src, json_t *x, double *walls,
                        int nwalls, run_result *res)
{
    memset(res, 0, sizeof *res);
    res->v = src->v;
    res->p = src->p;
    res->model_s = src->model_s;
    res->has_model = src->has_model;
    (void)pb;
    if (x == NULL) {
        res->run_failed = true;
        snprintf(res->out.first_error, sizeof res->out.first_error,
                 "the CPython twin gave no result for %s", src->v->label);
        return;
    }
    res->wall_s = twin_median(walls, nwalls);
    res->wall_min_s = nwalls ? walls[0] : 0;
    res->wall_max_s = nwalls ? walls[nwalls - 1] : 0;
    res->run_failed = json_is_true(json_object_get(x, "run_failed"));
    res->peak_rss_kb = (long)jnum(x, "peak_rss_kb");
    res->parent_pid = (int)jnum(x, "parent_pid");
    fill_outcome(x, &res->out);
    json_t *pw = json_object_get(x, "per_worker");
    size_t n = json_array_size(pw);
    res->workers = calloc(n ? n : 1, sizeof *res->workers);
    for (size_t i = 0; i < n && res->workers; i++) {
        json_t *w = json_array_get(pw, i);
        res->workers[i] = (run_worker){.slot = (int)jnum(w, "slot"), .pid = (int)jnum(w, "pid"),
                                       .tasks = (size_t)jnum(w, "tasks"),
                                       .busy_s = jnum(w, "busy_s")};
        res->nworkers++;
    }
}

void twin_build_report(const run_report *pb, json_t *const *res, double *const *walls,
                       const int *nwalls, run_report *out)
{
    memset(out, 0, sizeof *out);
    out->s = pb->s;
    out->p = pb->p;
    out->quick = pb->quick;
    out->repeat = pb->repeat;
    out->cores = pb->cores;
    memcpy(out->os, pb->os, sizeof out->os);
    memcpy(out->date, pb->date, sizeof out->date);
    memcpy(out->selected, pb->selected, sizeof out->selected);
    out->nselected = pb->nselected;
    out->task_timeout = pb->task_timeout;
    for (int i = 0; i < pb->nresults; i++)
        fill_result(pb, &pb->results[i], res[i], walls[i], nwalls[i],
                    &out->results[out->nresults++]);
}

/* ---- what CPython cannot do, and where it differs ------------------------------------ */

const char *twin_reason(json_t *res, const char *map, const char *check)
{
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(res, map), k, v) {
        size_t n = strlen(k);
        const char *rest = strchr(k, ' ');
        bool field = rest && memchr(k, '_', (size_t)(rest - k)) != NULL;
        if (strstr(check, k) ||
            (strncmp(check, k, n) == 0 && (check[n] == ':' || check[n] == ' ')) ||
            (field && strstr(check, rest + 1)))
            return json_string_value(v) ? json_string_value(v) : "(no reason given)";
    }
    return NULL;
}
