/*
 * poolbench.c: the command.
 *
 *   poolbench list                  the scenarios and the strategies
 *   poolbench show FILE             a scenario: doc, parameters, predictions
 *   poolbench run FILE [options]    run it, print the table and the checks
 *   poolbench lab [NAME [--seed N] [-c]]   a scenario as a classroom lab (lab.c)
 *   poolbench worker ...            (hidden) a pool's spawned worker (run_spawn.c)
 *
 * Exit status: 0 when every check holds, 1 when a check fails, 2 for bad
 * usage or a bad scenario (then the message is "file:line: message").
 * Results go to stdout, diagnostics to stderr, so that `run ... > out.txt`
 * keeps the table and still shows what went wrong.
 *
 * This file parses arguments and prints, and cmd_run reads as the steps of
 * a run: load the scenario (scenario.h), run each strategy (runner.c),
 * judge the checks (runner_checks.c), write the reports (report.c). One rule
 * matters here: no thread may be started before the strategies run (the
 * engine forks its fork server only from a single-threaded process), which
 * is why the progress line is a timer signal and not a thread.
 */
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <time.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compare.h"
#include "lab.h"
#include "report.h"
#include "report_timeline.h"
#include "runner.h"
#include "run_spawn.h"
#include "scenario.h"
#ifdef POOLBENCH_MPI
#include "run_mpi.h"
#endif

#define MAX_SETS 64

static const char usage_text[] =
    "usage: poolbench list\n"
    "       poolbench show FILE\n"
    "       poolbench run FILE [--impl a,b] [--set key=value]... [--quick] [--repeat N]\n"
    "                          [--json F] [--csv F] [--trace F] [--timeline]\n"
    "                          [--task-timeout SECONDS] [--run-timeout SECONDS]\n"
    "                          [--start-method fork|forkserver|spawn] [--transport socket|shm|mpi]\n"
    "       poolbench lab [NAME [--seed N] [-c [--no-run | --solution FILE]]]\n"
    "       poolbench lab NAME --exercise [FILE]\n"
    "       poolbench compare FILE [--impl a,b] [--set key=value]... [--quick] [--repeat N]\n"
    "                              [--json F] [--csv F]\n"
    "       poolbench COMMAND --help      (that command's usage)\n"
    "       poolbench --help | --version\n";

static const char help_text[] =
    "\n"
    "poolbench runs Lua scenarios (scenarios/*.lua) on several process-pool\n"
    "strategies and compares what they measure with what the scenario's model\n"
    "predicts.\n"
    "\n"
    "commands:\n"
    "  list             every scenario (scenarios/, or $POOLBENCH_SCENARIOS) with its\n"
    "                   summary, then every strategy\n"
    "  show FILE        the scenario's doc, parameters (default and quick), strategies\n"
    "                   and the model's predictions; runs nothing\n"
    "  run FILE         runs each strategy of the scenario, prints every parameter,\n"
    "                   a table and the checks\n"
    "  lab              the classroom labs (scenarios with a lab table), in course order\n"
    "  lab NAME         a lab's setting, with numbers drawn from --seed N (echoed; from\n"
    "                   the clock without it), and its questions; -c adds the model's\n"
    "                   answers, runs the scenario with those numbers and puts each\n"
    "                   prediction beside its measurement; -c --no-run: the answers\n"
    "                   alone, an answer key (docs/labs/README.md)\n"
    "  compare FILE     runs the scenario and its CPython twin (bench/python/NAME.py)\n"
    "                   interleaved, each strategy's time on both engines and the\n"
    "                   model's, the ratios the checks rely on side by side, and the\n"
    "                   checks judged on both (docs/report-format.md)\n"
    "  lab NAME --exercise [FILE]  the exercise \"write the fix\": a Lua skeleton\n"
    "                   strategy to complete (printed, or written to FILE);\n"
    "                   -c --solution FILE runs yours beside the reference strategy\n"
    "                   and the model, and judges it\n"
    "\n"
    "options of run:\n"
    "  --impl a,b       only these strategies (labels or strategy names)\n"
    "  --set key=value  a parameter (repeatable); see `show` for the valid ones\n"
    "  --quick          the small `quick` parameter values (seconds, for tests)\n"
    "  --repeat N       run each strategy N times; wall = median (default: the\n"
    "                   scenario's repeat, or 1)\n"
    "  --json F         the whole run as one JSON object\n"
    "  --csv F          one row per strategy, with a header\n"
    "  --trace F        one row per task execution (the last repeat), for timelines;\n"
    "                   the scenario's checks then get r[label].trace too\n"
    "  --timeline       after the table, each strategy's run as text: a lane per\n"
    "                   worker and one for the parent's callbacks, as wide as the\n"
    "                   terminal ($COLUMNS); turns the trace on like --trace\n"
    "  --task-timeout S a task running longer than S seconds fails (its worker is\n"
    "                   killed and replaced); default: the scenario's task_timeout, or none\n"
    "  --transport T    how chunks and results travel: socket (a shared socket and a\n"
    "                   pipe per worker) or shm (rings in shared memory); default:\n"
    "                   $POOLBENCH_TRANSPORT, else socket; a variant's transport = wins;\n"
    "                   mpi, under mpirun -n N+1: rank 0 runs, ranks 1..N are the pools'\n"
    "                   workers, each loading FILE itself (docs/mpi.md)\n"
    "  --run-timeout S  the whole run's time limit (default: the scenario's run_timeout,\n"
    "                   or 900; 0: none); past it the run stops as for SIGTERM, exit 124\n"
    "  --start-method M how pools start workers: forkserver (the default: a single-\n"
    "                   threaded fork server), fork (from the running process, from\n"
    "                   a thread) or spawn (a fresh poolbench for each); default: the\n"
    "                   scenario's start_method; a variant that sets its own keeps it\n"
    "\n"
    "exit status: 0 every check holds, 1 a check failed, 2 bad usage or a bad scenario,\n"
    "124 the run time limit, 130 SIGINT, 143 SIGTERM (then the report so far, marked\n"
    "interrupted; the scenario's cleanup and temporary files are done with all the same)\n"
    "docs: docs/lua-api.md (scenario files), docs/report-format.md (JSON, CSV, trace)\n";

/* `poolbench CMD --help` (or -h anywhere after CMD): that command's usage
 * on stdout, exit 0. The options of run are help_text's own section. */
static int sub_help(const char *cmd)
{
    if (strcmp(cmd, "list") == 0)
        printf("usage: poolbench list\n\nEvery scenario (scenarios/, or $POOLBENCH_SCENARIOS) "
               "with its summary,\nthen every strategy with the document it comes from.\n");
    else if (strcmp(cmd, "show") == 0)
        printf("usage: poolbench show FILE\n\nThe scenario's doc, parameters (default and "
               "quick), strategies and the\nmodel's predictions; runs nothing.\n");
    else if (strcmp(cmd, "run") == 0)
        printf("usage: poolbench run FILE [--impl a,b] [--set key=value]... [--quick] "
               "[--repeat N]\n                          [--json F] [--csv F] [--trace F] "
               "[--timeline]\n                          [--task-timeout SECONDS] "
               "[--run-timeout SECONDS]\n                          "
               "[--start-method fork|forkserver|spawn] [--transport socket|shm|mpi]"
               "\n\nRuns each strategy of the scenario, prints every "
               "parameter, a table and the\nchecks.\n\n%s", strstr(help_text, "options of run:"));
    else if (strcmp(cmd, "lab") == 0)
        printf("usage: poolbench lab [NAME [--seed N] [-c [--no-run | --solution FILE]]]\n"
               "       poolbench lab NAME --exercise [FILE]\n\n"
               "The classroom labs (docs/labs/README.md). Without NAME, the labs in course\n"
               "order; NAME: its setting with numbers drawn from --seed N and its questions;\n"
               "-c: the model's answers, then the run (its table and each strategy's\n"
               "timeline as text), each prediction beside its measurement (--no-run: the\n"
               "answers alone; --solution FILE: your Lua strategy judged against the\n"
               "reference);\n"
               "--exercise: the \"write the fix\" skeleton, printed or written to FILE.\n");
    else if (strcmp(cmd, "compare") == 0)
        printf("usage: poolbench compare FILE [--impl a,b] [--set key=value]... [--quick] "
               "[--repeat N]\n                              [--json F] [--csv F]\n\n"
               "The scenario and its CPython twin (bench/python/NAME.py) in one run,\n"
               "interleaved, timed the same way and judged by the same checks\n"
               "(docs/report-format.md).\n");
    else
        return -1;
    return 0;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "poolbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage_text);
    return 2;
}

/* ---- list -------------------------------------------------------------------- */

/* $POOLBENCH_SCENARIOS, else ./scenarios, else scenarios/ beside the
 * directory holding this binary (build/poolbench -> scenarios/). */
static void scenarios_dir(char *buf, size_t len)
{
    const char *env = getenv("POOLBENCH_SCENARIOS");
    struct stat st;
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return;
    }
    snprintf(buf, len, "scenarios");
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
        return;
    char exe[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, len, "%s/../scenarios", exe);
        }
    }
}

static int cmd_list(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 256], err[SCN_ERR];
    struct dirent **names;
    int rc = 0;
    scenarios_dir(dir, sizeof dir);
    char *real = realpath(dir, NULL); /* build/../scenarios reads better resolved */
    if (real) {
        snprintf(dir, sizeof dir, "%s", real);
        free(real);
    }
    int n = scandir(dir, &names, scn_is_scenario_file, alphasort);
    if (n < 0) {
        fprintf(stderr, "poolbench: %s: %s\n", dir, strerror(errno));
        rc = 2;
        n = 0;
    }
    printf("scenarios (%s):\n", dir);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        scn_scenario *s = scn_load(path, err, sizeof err);
        if (s == NULL) {
            fprintf(stderr, "%s\n", err);
            printf("  %-20s (cannot load: see stderr)\n", names[i]->d_name);
            rc = 2;
        } else {
            printf("  %-20s %s\n", s->name, s->summary[0] ? s->summary : s->doc);
        }
        scn_free(s);
        free(names[i]);
    }
    if (n == 0)
        printf("  (none)\n");
    free(names);
    printf("\nstrategies (impls/NAME.c; document in brackets):\n");
    for (int i = 0; strat_all[i]; i++)
        printf("  %-20s [%s] %s\n", strat_all[i]->name, strat_all[i]->source,
               strat_all[i]->summary);
    return rc;
}

/* ---- show --------------------------------------------------------------------- */

/* The parameters as `show` lists them: default, quick, range, doc. */
static void show_params(const scn_scenario *s)
{
    printf("\nparameters (--set key=value):\n  %-18s %-9s %-9s %-14s %s\n", "name", "default",
           "quick", "range", "what");
    for (int i = 0; i < s->nparams; i++) {
        const scn_param *q = &s->params[i];
        char d[64], qk[64], range[80] = "any", lo[32] = "", hi[32] = "";
        scn_num_format(q->def, d, sizeof d);
        scn_num_format(q->quick, qk, sizeof qk);
        if (q->min > -1e300)
            snprintf(lo, sizeof lo, "%g", q->min);
        if (q->max < 1e300)
            snprintf(hi, sizeof hi, "%g", q->max);
        if (lo[0] || hi[0])
            snprintf(range, sizeof range, "%s..%s", lo, hi);
        printf("  %-18s %-9s %-9s %-14s %s\n", q->name, d, qk, range, q->doc);
    }
}

/* The model's prediction for every variant, with the defaults and with the
 * quick values. 0, or 2 with the model's error in err. */
static int show_predictions(scn_scenario *s, char *err, size_t errlen)
{
    scn_params pd, pq, p;
    int rc = 0;
    scn_params_resolve(s, false, NULL, 0, &pd, err, errlen);
    scn_params_resolve(s, true, NULL, 0, &pq, err, errlen);
    printf("\nstrategies and the model's predictions, seconds:\n  %-20s %-20s %-10s %s\n",
           "label", "strategy", "defaults", "quick");
    for (int i = 0; i < s->nvariants && rc == 0; i++) {
        const scn_variant *v = &s->variants[i];
        char cell[2][32];
        const scn_params *base[2] = {&pd, &pq};
        for (int k = 0; k < 2 && rc == 0; k++) {
            double m = 0;
            scn_params_for(s, base[k], v, &p);
            int got = scn_model_eval(s, v, &p, &m, err, errlen);
            if (got < 0)
                rc = 2;
            snprintf(cell[k], sizeof cell[k], got == 1 ? "%.3f" : "-", m);
        }
        if (rc == 0)
            printf("  %-20s %-20s %-10s %s\n", v->label, v->impl->name, cell[0], cell[1]);
    }
    return rc;
}

static int cmd_show(const char *path)
{
    char err[SCN_ERR];
    scn_scenario *s = scn_load(path, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    printf("%s (%s)\n", s->name, s->path);
    if (s->source[0])
        printf("source: %s\n", s->source);
    if (s->summary[0])
        printf("%s\n", s->summary);
    if (s->doc[0]) {
        putchar('\n');
        rep_wrap(s->doc, "  ", "  ");
    }
    show_params(s);
    printf("\ntasks (Lua):");
    for (int i = 0; i < s->ntasks; i++)
        printf("%s %s", i ? "," : "", s->tasks[i]);
    printf("%s\n", s->ntasks ? "" : " none");
    int rc = show_predictions(s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    scn_free(s);
    return rc;
}

/* ---- run ---------------------------------------------------------------------- */

typedef struct run_args {
    const char *file, *json, *csv, *trace;
    char impls[1024];
    char *sets[MAX_SETS];
    int nsets;
    bool quick;
    int repeat;
    double task_timeout; /* 0: the scenario's */
    int start_method;    /* 1 + enum pool_start_method; 0: the scenario's */
    int transport;       /* --transport; 0: POOLBENCH_TRANSPORT, else socket */
    double run_timeout;  /* < 0: the scenario's, else the default; 0: none */
    bool timeline;       /* --timeline */
} run_args;

/* --name value or --name=value; returns the value or NULL (usage error). */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static bool is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static int parse_run(int argc, char **argv, run_args *a)
{
    memset(a, 0, sizeof *a);
    a->repeat = 0; /* the scenario's repeat, or 1 (run_prepare) */
    a->run_timeout = -1;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        if (strcmp(arg, "--quick") == 0) {
            a->quick = true;
        } else if (strcmp(arg, "--timeline") == 0) {
            a->timeline = true;
        } else if (is_opt(arg, "--impl")) {
            if ((v = opt_value(argc, argv, &i, "--impl")) == NULL)
                return usage_error("%s needs a value", "--impl");
            snprintf(a->impls + strlen(a->impls), sizeof a->impls - strlen(a->impls), "%s%s",
                     a->impls[0] ? "," : "", v);
        } else if (is_opt(arg, "--set")) {
            if ((v = opt_value(argc, argv, &i, "--set")) == NULL)
                return usage_error("%s needs key=value", "--set");
            if (a->nsets == MAX_SETS)
                return usage_error("too many --set (at most %s)", "64");
            a->sets[a->nsets++] = (char *)v;
        } else if (is_opt(arg, "--repeat")) {
            char *end;
            if ((v = opt_value(argc, argv, &i, "--repeat")) == NULL)
                return usage_error("%s needs a number", "--repeat");
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || *end || end == v || n < 1 || n > 1000)
                return usage_error("--repeat expects a whole number from 1 to 1000 (got '%s')",
                                   v);
            a->repeat = (int)n;
        } else if (is_opt(arg, "--task-timeout") || is_opt(arg, "--run-timeout")) {
            const char *name = is_opt(arg, "--task-timeout") ? "--task-timeout" : "--run-timeout";
            char *end;
            if ((v = opt_value(argc, argv, &i, name)) == NULL)
                return usage_error("%s needs a number of seconds", name);
            errno = 0;
            double sec = strtod(v, &end);
            bool task = name[2] == 't';
            bool in_range = sec >= (task ? 1e-3 : 0) && sec <= SCN_MAX_SECONDS;
            if (errno || *end || end == v || !in_range) {
                fprintf(stderr, "poolbench: %s expects seconds from %s to 1e6 (got '%s')\n", name,
                        task ? "0.001" : "0 (no limit)", v);
                fprintf(stderr, "%s", usage_text);
                return 2;
            }
            *(task ? &a->task_timeout : &a->run_timeout) = sec;
        } else if (is_opt(arg, "--start-method")) {
            if ((v = opt_value(argc, argv, &i, "--start-method")) == NULL)
                return usage_error("%s needs fork, forkserver or spawn", "--start-method");
            int m = pool_start_method_parse(v);
            if (m < 0)
                return usage_error("--start-method must be fork, forkserver or spawn (got '%s')",
                                   v);
            a->start_method = m + 1;
        } else if (is_opt(arg, "--transport")) {
            if ((v = opt_value(argc, argv, &i, "--transport")) == NULL)
                return usage_error("%s needs socket, shm or mpi", "--transport");
            if ((a->transport = pool_transport_parse(v)) < 0) {
                fprintf(stderr, "poolbench: --transport: unknown transport '%s' (valid: socket, "
                        "shm); and mpi under mpirun (docs/mpi.md)\n", v);
                fprintf(stderr, "%s", usage_text);
                return 2;
            }
        } else if (is_opt(arg, "--json") || is_opt(arg, "--csv") || is_opt(arg, "--trace")) {
            const char *name = is_opt(arg, "--json") ? "--json"
                               : is_opt(arg, "--csv") ? "--csv" : "--trace";
            if ((v = opt_value(argc, argv, &i, name)) == NULL || !*v)
                return usage_error("%s needs a file name", name);
            *(name[2] == 'j' ? &a->json : name[2] == 'c' ? &a->csv : &a->trace) = v;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return usage_error("unknown option '%s'", arg);
        } else if (a->file == NULL) {
            a->file = arg;
        } else {
            return usage_error("one scenario file at a time (got '%s' too)", arg);
        }
    }
    if (a->file == NULL)
        return usage_error("%s needs a scenario file", "run");
    return 0;
}

/* The files asked for (--json, --csv, --trace). 0, or 2 with the message
 * printed. */
static int write_reports(const run_args *a, const run_report *r)
{
    char err[SCN_ERR];
    if ((a->json && rep_json(a->json, r, err, sizeof err) != 0) ||
        (a->csv && rep_csv(a->csv, r, err, sizeof err) != 0) ||
        (a->trace && rep_trace(a->trace, r, err, sizeof err) != 0)) {
        fprintf(stderr, "poolbench: %s\n", err);
        return 2;
    }
    return 0;
}

/* ---- SIGINT, SIGTERM and the run's time limit ------------------------------------ */

#define RUN_TIMEOUT_DEFAULT 900.0 /* seconds: no scenario hangs a test run for longer */
#define RUN_GRACE 15.0            /* after the limit: seconds to wind down, then _exit */

static pid_t pb_main_pid;
static bool pb_mpi; /* an MPI job's rank 0 (--transport mpi) */
static volatile sig_atomic_t pb_signals;
static lua_State *volatile pb_lua; /* the scenario's state: a hook stops its Lua */
static timer_t pb_timer;
static bool pb_timer_ok;

/* A Lua hook that raises "interrupted" at the next instruction: stops Lua
 * code the parent runs (setup, a stage callback_chain runs there, checks),
 * caught by the protected call around it. */
static void pb_lua_stop(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

static void pb_say(const char *msg)
{
    ssize_t w = write(STDERR_FILENO, msg, strlen(msg));
    (void)w;
}

static void pb_arm(double first)
{
    if (!pb_timer_ok)
        return;
    struct itimerspec its = {
        .it_value = {(time_t)first, (long)((first - (double)(time_t)first) * 1e9)},
    };
    timer_settime(pb_timer, 0, &its, NULL);
}

/* Async-signal-safe: a flag, pool_interrupt_all (strat_interrupt), kill,
 * lua_sethook (Lua allows it in a signal handler), write, _exit. A fork of
 * poolbench (a worker, process_per_task's child) dies of the signal as if
 * there were no handler. */
static void on_signal(int sig)
{
    if (getpid() != pb_main_pid) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    int saved = errno;
    if (++pb_signals >= 3) {
        pb_say("poolbench: signalled three times: exiting at once\n");
        _exit(128 + sig);
    }
    if (pb_mpi && sig == SIGTERM && pb_signals == 1)
        pb_say("poolbench: SIGTERM on an MPI job: mpirun ends every rank this way when one "
               "dies (MPI's rule), so the pool is broken, as concurrent.futures' "
               "BrokenProcessPool; mpirun's message names the rank\n");
    strat_interrupt(sig);
    if (pb_lua)
        lua_sethook(pb_lua, pb_lua_stop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    errno = saved;
}

/* The run's time limit: the first expiry stops the run as SIGTERM would,
 * and gives it RUN_GRACE seconds to wind down; the second ends the process. */
static void on_time_limit(int sig)
{
    (void)sig;
    if (getpid() != pb_main_pid)
        return;
    int saved = errno;
    if (strat_interrupted() == 0) {
        pb_say("poolbench: run time limit reached: stopping\n");
        strat_interrupt(RUN_TIME_LIMIT);
        if (pb_lua)
            lua_sethook(pb_lua, pb_lua_stop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
        pb_arm(RUN_GRACE);
    } else {
        pb_say("poolbench: the run did not wind down after its time limit: exiting at once\n");
        _exit(124);
    }
    errno = saved;
}

/* Handlers for SIGINT and SIGTERM, and the time-limit timer (a POSIX timer
 * and its signal, not a thread: no thread may exist when a pool forks). */
static void pb_signals_install(double run_timeout)
{
    pb_main_pid = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_time_limit;
    sigaction(SIGVTALRM, &sa, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGVTALRM;
    pb_timer_ok = timer_create(CLOCK_MONOTONIC, &sev, &pb_timer) == 0;
    if (run_timeout > 0)
        pb_arm(run_timeout);
}

/* The exit status of an interrupted run: 124 (the time limit, as
 * timeout(1)), else 128 + the signal (130 SIGINT, 143 SIGTERM). */
static int interrupted_status(int why)
{
    return why == RUN_TIME_LIMIT ? 124 : 128 + why;
}

/* The scenario's cleanup(), whatever happened before: with the Lua hook
 * off, so that an interruption does not stop it too. */
static void run_cleanup(scn_scenario *s)
{
    char err[SCN_ERR];
    pb_lua = NULL;
    scn_lock();
    lua_sethook(s->L, NULL, 0, 0);
    scn_unlock();
    if (scn_call_hook(s, "cleanup", NULL, NULL, err, sizeof err) != 0)
        fprintf(stderr, "%s\n", err);
}

/*
 * run: load the scenario, run each strategy, judge the checks, write the
 * reports. The echo comes before the runs and the table after them even
 * when the scenario fails midway, so that what did run is on record.
 * SIGINT, SIGTERM or the run's time limit stop the strategy that is running;
 * the table of what was measured is printed, marked interrupted, the
 * reports written, the scenario's cleanup run, and the status is 130, 143
 * or 124.
 */
static int cmd_run(int argc, char **argv)
{
    run_args a;
    int rc = parse_run(argc, argv, &a);
    if (rc != 0)
        return rc;
    bool mpi = a.transport == POOL_TRANSPORT_MPI;
    if (mpi) { /* before anything else: a worker rank only serves (run_mpi.h) */
#ifdef POOLBENCH_MPI
        int rank = run_mpi_start(&argc, &argv);
        if (rank < 0)
            return 2;
        if (rank > 0)
            return run_mpi_worker(a.file);
        pb_mpi = true;
#else
        fprintf(stderr, "poolbench: --transport mpi: this poolbench was built without Open "
                "MPI (make deps installs it; then make)\n");
        return 2;
#endif
    }
    pb_signals_install(a.run_timeout >= 0 ? a.run_timeout : RUN_TIMEOUT_DEFAULT);

    /* 1. Load the scenario; register its Lua tasks before any pool exists. */
    char err[SCN_ERR];
    scn_scenario *s = scn_load(a.file, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "%s\n", err);
        scn_tmp_cleanup();
        return strat_interrupted() ? interrupted_status(strat_interrupted()) : 2;
    }
    if (a.run_timeout < 0 && s->run_timeout > 0)
        pb_arm(s->run_timeout);
    pb_lua = s->L;
    run_register_tasks(s);
#ifdef POOLBENCH_MPI
    if (mpi)
        run_mpi_bind(s);
#endif
    run_options o = {
        .impls = a.impls[0] ? a.impls : NULL, .quick = a.quick, .sets = a.sets,
        .nsets = a.nsets, .repeat = a.repeat, .task_timeout = a.task_timeout,
        .start_method = a.start_method,
        .transport = a.transport,
        .progress = isatty(STDERR_FILENO) ? rep_progress : NULL,
        .trace = a.trace != NULL || a.timeline,
    };
    run_report r;
    if (run_prepare(s, &o, &r, err, sizeof err) != 0) {
        fprintf(stderr, "poolbench: %s\n", err);
        rc = 2;
        goto out;
    }
    rep_echo(stdout, &r);
#ifdef POOLBENCH_MPI
    if (mpi)
        run_mpi_describe(stdout);
#endif
    fflush(stdout); /* the echo comes first even when stdout is a pipe */

    /* 2. Run each strategy. */
    bool failed = run_strategies(&r, &o, err, sizeof err) != 0;
    if (r.interrupted || strat_interrupted()) {
        r.interrupted = strat_interrupted();
        rep_table(stdout, &r);
        fflush(stdout);
        fprintf(stderr, "poolbench: interrupted by %s\n", run_interrupt_name(r.interrupted));
        write_reports(&a, &r);
        rc = interrupted_status(r.interrupted);
        goto out;
    }
    /* 3. Judge the checks: checks(r, p, check), then done(report). */
    failed = failed || run_judge(&r, err, sizeof err) != 0;
    rep_table(stdout, &r);
    if (a.timeline)
        rep_timelines(stdout, &r, rep_timeline_width());
    if (failed) {
        fflush(stdout);
        fprintf(stderr, "%s\n", err);
        rc = strat_interrupted() ? interrupted_status(strat_interrupted()) : 2;
        goto out;
    }
    rep_checks(stdout, &r);
    fflush(stdout);
    rc = run_exit_status(&r);

    /* 4. Write the reports. */
    if (write_reports(&a, &r) != 0)
        rc = 2;
out:
    /* 5. The scenario's cleanup and its temporary files, however it went. */
    run_cleanup(s);
    scn_tmp_cleanup();
    if (strat_interrupted() && rc < 124)
        rc = interrupted_status(strat_interrupted());
    run_report_free(&r);
    scn_free(s);
#ifdef POOLBENCH_MPI
    if (mpi)
        run_mpi_end();
#endif
    return rc;
}

int main(int argc, char **argv)
{
    /* A spawned worker of a pool (start method spawn): nothing else runs. */
    if (pool_worker_spawn_arg(argc, argv) != NULL)
        return run_spawn_worker_main(argc, argv);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        run_spawn_set_program(self);
    }
    if (argc < 2)
        return usage_error("%s", "no command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        printf("%s%s", usage_text, help_text);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("poolbench %s\n", POOLBENCH_VERSION);
        return 0;
    }
    if (wants_help(argc, argv) && sub_help(cmd) == 0)
        return 0;
    if (strcmp(cmd, "list") == 0)
        return argc == 2 ? cmd_list() : usage_error("list takes no argument (got '%s')", argv[2]);
    if (strcmp(cmd, "show") == 0) {
        if (argc != 3 || argv[2][0] == '-')
            return usage_error("%s needs exactly one scenario file", "show");
        return cmd_show(argv[2]);
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc, argv);
    if (strcmp(cmd, "compare") == 0) { /* compare.c: signals and temporary files as for run */
        pb_signals_install(RUN_TIMEOUT_DEFAULT);
        int rc = compare_main(argc, argv);
        scn_tmp_cleanup();
        return strat_interrupted() ? interrupted_status(strat_interrupted()) : rc;
    }
    if (strcmp(cmd, "lab") == 0) { /* lab.c; it finds labs where list finds scenarios */
        char dir[PATH_MAX];
        scenarios_dir(dir, sizeof dir);
        /* lab -c runs the scenario: SIGINT, SIGTERM and the time limit stop
         * it as they stop `run` */
        pb_signals_install(RUN_TIMEOUT_DEFAULT);
        int rc = lab_main(argc, argv, dir);
        scn_tmp_cleanup();
        return strat_interrupted() ? interrupted_status(strat_interrupted()) : rc;
    }
    return usage_error("unknown command '%s'", cmd);
}
