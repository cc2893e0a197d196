/* The tide command and its REPL, driven from outside: command modes
   through popen, the REPL through a pseudo-terminal (forkpty) so that
   line editing, completion and history run as they do for a user. Every
   read has a deadline, so a hang fails the test instead of blocking it. */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TIDE_BIN   TIDE_BINARY_DIR "/tide"
#define TIMEOUT_MS 10000
#define OUT_MAX    (1 << 20)

/* --- command modes --- */

/* Runs a shell command line with stderr folded into stdout; returns its
   exit status and leaves the output in out. */
static int run(const char *cmdline, char *out, size_t size)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmdline);
    FILE *p = popen(full, "r");
    ck_assert_msg(p != NULL, "popen failed: %s", strerror(errno));
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tide_repl_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes text to tmpdir/name; the path goes to path. */
static void write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    struct stat st;
    ck_assert_msg(stat(TIDE_BIN, &st) == 0, "%s is not built", TIDE_BIN);
    make_tmpdir();
}

START_TEST(test_eval_string)
{
    char out[4096];
    ck_assert_int_eq(run(TIDE_BIN " -e 'print(1+2)'", out, sizeof out), 0);
    ck_assert_str_eq(out, "3\n");
    ck_assert_int_eq(run(TIDE_BIN " -e 'x = 20' -e 'print(x + 1)'", out, sizeof out), 0);
    ck_assert_str_eq(out, "21\n");
}
END_TEST

START_TEST(test_version)
{
    char out[4096];
    ck_assert_int_eq(run(TIDE_BIN " -v", out, sizeof out), 0);
    ck_assert_msg(strncmp(out, "tide 0.1.0", 10) == 0, "got: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "Lua 5.4"));
    ck_assert_int_eq(run(TIDE_BIN " -h", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: tide"));
    ck_assert_int_ne(run(TIDE_BIN " --no-such-option", out, sizeof out), 0);
}
END_TEST

START_TEST(test_script_args)
{
    char path[512], cmd[1024], out[4096];
    write_file("args.lua", "#!/usr/bin/env tide\nprint(arg[1], arg[2], select('#', ...), arg[0])\n",
               path, sizeof path);
    snprintf(cmd, sizeof cmd, TIDE_BIN " %s hello world", path);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    char want[1024];
    snprintf(want, sizeof want, "hello\tworld\t2\t%s\n", path);
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(test_stdin_script)
{
    char out[4096];
    ck_assert_int_eq(run("printf 'print(6*7)\\n' | " TIDE_BIN " -", out, sizeof out), 0);
    ck_assert_str_eq(out, "42\n");
}
END_TEST

START_TEST(test_script_error)
{
    char path[512], cmd[1024], out[4096];
    write_file("bad.lua", "local x = 1\nerror('kaboom')\n", path, sizeof path);
    snprintf(cmd, sizeof cmd, TIDE_BIN " %s", path);
    ck_assert_int_eq(run(cmd, out, sizeof out), 1);
    ck_assert_msg(strncmp(out, "tide: ", 6) == 0, "got: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "bad.lua:2: kaboom"));
    ck_assert_ptr_nonnull(strstr(out, "stack traceback"));
    ck_assert_int_eq(run(TIDE_BIN " -e 'error(\"oops\")'", out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "oops"));
}
END_TEST

START_TEST(test_piped_repl)
{
    /* without a terminal the REPL reads plain lines and prints no prompt */
    char out[4096];
    ck_assert_int_eq(
        run("printf '1+1\\nfunction g()\\n return 7\\nend\\ng()\\n' | " TIDE_BIN, out, sizeof out),
        0);
    ck_assert_msg(strncmp(out, "2\n[", 3) == 0, "got: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "\n7\n"));
}
END_TEST

START_TEST(test_loss_help)
{
    /* ?name finds a loss's section in the repository's docs/losses_*.md
       and stops at the next section */
    char out[16384];
    ck_assert_int_eq(run("printf '?cross_entropy\\n' | " TIDE_BIN, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "## cross_entropy") != NULL, "got: %s", out);
    ck_assert_msg(strstr(out, "label_smoothing") != NULL, "got: %s", out);
    ck_assert_msg(strstr(out, "## nll_loss") == NULL, "the next section leaked in: %s", out);
}
END_TEST

START_TEST(test_loss_help_by_module)
{
    /* a module or qualified name finds the loss through the loss table:
       its options with their defaults, then its docs section */
    char out[16384];
    ck_assert_int_eq(
        run("printf '?tide.nn.FocalLoss\\n?F.nll_loss\\n' | " TIDE_BIN, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "tide.nn.FocalLoss{options}") != NULL, "got: %s", out);
    ck_assert_msg(strstr(out, "gamma            default 2") != NULL, "got: %s", out);
    ck_assert_msg(strstr(out, "## focal_loss") != NULL, "got: %s", out);
    ck_assert_msg(strstr(out, "## nll_loss") != NULL, "got: %s", out);
    ck_assert_msg(strstr(out, "no help") == NULL, "got: %s", out);
}
END_TEST

START_TEST(test_piped_tables)
{
    /* results are laid out by tide.print's show: a shape as {2, 3}, a
       state_dict as names with shapes and dtypes; print(shape) too */
    char out[16384];
    ck_assert_int_eq(run("printf 'x = tide.zeros{2, 3}\\nx:shape()\\nprint(x:shape())\\n"
                         "tide.nn.Sequential(tide.nn.Linear(3, 4), tide.nn.ReLU()):state_dict()\\n"
                         "{a = {b = {c = {d = {e = 1}}}}}\\n' | " TIDE_BIN,
                         out, sizeof out),
                     0);
    ck_assert_msg(strstr(out, "]\n{2, 3}\n[") != NULL, "x:shape() shown as: %s", out);
    const char *first = strstr(out, "{2, 3}\n[");
    ck_assert_msg(first && strstr(first + 1, "{2, 3}\n["), "print(x:shape()) gave: %s", out);
    ck_assert_msg(strstr(out, "table: 0x") == NULL, "a table printed as an address: %s", out);
    ck_assert_msg(strstr(out, "[\"0.weight\"] = tensor(shape=(4,3), dtype=float32, device=cpu)"),
                  "state_dict shown as: %s", out);
    ck_assert_msg(strstr(out, "tensor([") == NULL, "state_dict values shown: %s", out);
    ck_assert_msg(strstr(out, "{a = {b = {c = {d = {...}}}}}") != NULL, "depth limit: %s", out);
}
END_TEST

START_TEST(test_piped_last_result_and_locals)
{
    /* `_` is the last result, also when silenced; a top-level local
       stays visible on the next line, as trepl's users expect */
    char out[4096];
    ck_assert_int_eq(run("printf '6 * 7\\n_ + 1\\n10;\\n_\\nlocal y, z = 5, 6\\ny + z\\n"
                         "local function sq(v) return v * v end\\nsq(9)\\n"
                         "do local hidden = 1 end\\nhidden\\n' | " TIDE_BIN,
                         out, sizeof out),
                     0);
    ck_assert_msg(strstr(out, "\n43\n") != NULL, "_ + 1 gave: %s", out);
    ck_assert_msg(strstr(out, "\n10\n") != NULL, "_ after a silenced 10 gave: %s", out);
    ck_assert_msg(strstr(out, "\n11\n") != NULL, "local y, z not kept: %s", out);
    ck_assert_msg(strstr(out, "\n81\n") != NULL, "local function not kept: %s", out);
    ck_assert_msg(strstr(out, "\nnil\n") != NULL, "a block's local leaked: %s", out);
}
END_TEST

START_TEST(test_help_names)
{
    /* qualified names, module classes and namespaces all find their help;
       not on a terminal, nothing goes through the pager */
    static const char *const asks[][2] = {
        {"tide.F.focal_loss", "## focal_loss"},
        {"F.cross_entropy", "## cross_entropy"},
        {"tide.nn.Linear", "tide.nn.Linear(in_features"},
        {"tide.optim.SGD", "tide.optim.SGD(params"},
        {"FocalLoss", "tide.nn.FocalLoss{options}"},
        {"CrossEntropyLoss", "tide.nn.CrossEntropyLoss{options}"},
        {"tide.nn", "Documented here"},
        {"x:sum", "## Tensor:sum"},
        {"m:forward", "## Linear"},
        {"tide.F.softplus", "tide.F.softplus(x, {beta = 1, threshold = 20})"},
        {"threshold", "tide.threshold, tide.F.threshold(x, threshold, value)"},
    };
    for (size_t i = 0; i < sizeof asks / sizeof *asks; i++) {
        char cmd[1024], out[65536];
        snprintf(cmd, sizeof cmd,
                 "printf 'x = tide.ones{2}; m = tide.nn.Linear(2, 2)\\n?%s\\n' | "
                 "PAGER='sed s/^/PAGED:/' " TIDE_BIN,
                 asks[i][0]);
        ck_assert_int_eq(run(cmd, out, sizeof out), 0);
        ck_assert_msg(strstr(out, asks[i][1]) != NULL, "?%s gave: %s", asks[i][0], out);
        ck_assert_msg(strstr(out, "no help") == NULL, "?%s gave: %s", asks[i][0], out);
        ck_assert_msg(strstr(out, "PAGED:") == NULL, "?%s was paged off a terminal", asks[i][0]);
    }
}
END_TEST

/* Starting must not map the GPU libraries (cuBLAS and cuBLASLt alone
   took 220 MB and 350 ms of every CPU-only start when they were linked):
   they open on first use. Checked on what is mapped, not on a clock, so a
   loaded machine cannot fail it; scripts/bench/startup.sh times it. */
START_TEST(test_startup_maps_no_gpu_library)
{
    char out[4096];
    ck_assert_int_eq(run(TIDE_BIN
                         " -e 'for l in io.lines(\"/proc/self/maps\") do "
                         "for _, n in ipairs{\"libcublas\", \"libcudnn\", \"libcuda.so\", "
                         "\"libnccl\"} do if l:find(n, 1, true) then print(\"MAPPED \" .. l) "
                         "end end end'",
                         out, sizeof out),
                     0);
    ck_assert_msg(strstr(out, "MAPPED") == NULL, "tide -e '' maps: %s", out);
}
END_TEST

/* --- the REPL on a pseudo-terminal --- */

typedef struct {
    int fd;
    pid_t pid;
    char *out;   /* everything read so far, NUL-terminated */
    size_t len;  /* bytes in out */
    size_t mark; /* where the next expect starts looking */
} session;

static session s;

/* Starts tide on a new terminal with the home and docs of start_repl. */
static void start_repl_again(void)
{
    char docs[512], home[512];
    snprintf(home, sizeof home, "%s/home", tmpdir);
    snprintf(docs, sizeof docs, "%s/docs", tmpdir);
    s.out = calloc(OUT_MAX, 1);
    s.len = s.mark = 0;
    s.pid = forkpty(&s.fd, NULL, NULL, NULL);
    ck_assert_int_ge(s.pid, 0);
    if (s.pid == 0) {
        setenv("HOME", home, 1);
        setenv("TERM", "dumb", 1);
        setenv("TIDE_DOC_DIR", docs, 1);
        setenv("PAGER", "sed s/^/PAGED:/", 1);
        unsetenv("TIDE_HISTORY");
        execl(TIDE_BIN, "tide", (char *)NULL);
        _exit(127);
    }
}

static void start_repl(void)
{
    char docs[512], home[512];
    snprintf(home, sizeof home, "%s/home", tmpdir);
    snprintf(docs, sizeof docs, "%s/docs", tmpdir);
    ck_assert_int_eq(mkdir(home, 0700), 0);
    ck_assert_int_eq(mkdir(docs, 0700), 0);
    char path[512];
    write_file("docs/zz_test.md",
               "# test docs\n\n## tide.zeros(shape, opts)\n\nHELP-MARKER: a tensor of zeros.\n\n"
               "## tide.ones(shape)\n\nOTHER-SECTION\n",
               path, sizeof path);
    start_repl_again();
}

/* Reads until `needle` shows up after the mark; returns a copy of the
   text from the mark to the end of the needle (the caller frees it) and
   moves the mark past it. Fails the test on timeout or end of output. */
static char *expect(const char *needle)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        char *hit = strstr(s.out + s.mark, needle);
        if (hit != NULL) {
            size_t end = (size_t)(hit - s.out) + strlen(needle);
            char *region = strndup(s.out + s.mark, end - s.mark);
            s.mark = end;
            return region;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        ck_assert_msg(waited < TIMEOUT_MS, "timed out waiting for '%s'; output so far:\n%s", needle,
                      s.out + s.mark);
        struct pollfd p = {s.fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(s.fd, s.out + s.len, OUT_MAX - 1 - s.len);
        ck_assert_msg(n > 0, "tide closed the terminal waiting for '%s'; output:\n%s", needle,
                      s.out + s.mark);
        s.len += (size_t)n;
        s.out[s.len] = '\0';
    }
}

/* libedit prints its prompt before it puts the terminal in raw mode, so
   a control character typed right after the prompt could still meet the
   cooked line discipline (^D there is not a byte libedit sees). Wait for
   raw mode: the master side reads the slave's settings. */
static void wait_for_raw_mode(void)
{
    struct termios t;
    for (int waited = 0; waited < TIMEOUT_MS; waited++) {
        ck_assert_int_eq(tcgetattr(s.fd, &t), 0);
        if (!(t.c_lflag & ICANON)) return;
        usleep(1000);
    }
    ck_abort_msg("the terminal never left cooked mode");
}

static void type_text(const char *text)
{
    size_t n = strlen(text);
    wait_for_raw_mode();
    ck_assert_int_eq(write(s.fd, text, n), (ssize_t)n);
}

/* Sends a line that the REPL evaluates and returns what came back up to
   the prompt after the timing line: a bare "tide> " could be an earlier
   redraw, and typing ahead of the prompt would reach the terminal while
   it is in cooked mode (where ^D and ^U mean something else). */
static char *eval(const char *line)
{
    type_text(line);
    return expect("s]\r\ntide> ");
}

/* Sends a line that prints something without evaluating (?help). */
static char *command(const char *line)
{
    type_text(line);
    return expect("tide> ");
}

static void assert_contains(char *region, const char *want)
{
    ck_assert_msg(strstr(region, want) != NULL, "expected '%s' in:\n%s", want, region);
    free(region);
}

/* A timing line "[0.0012s]" somewhere in the region. */
static int has_timing(const char *region)
{
    for (const char *p = strchr(region, '['); p; p = strchr(p + 1, '[')) {
        double t;
        char c;
        if (sscanf(p, "[%lf%c]", &t, &c) == 2 && c == 's' && t >= 0) return 1;
    }
    return 0;
}

/* Ctrl-D at the prompt must end the REPL with status 0, within the
   deadline. */
static void stop_repl(void)
{
    int status = 0;
    pid_t got = 0;
    type_text("\x04");
    for (int waited = 0; waited < TIMEOUT_MS && got == 0; waited += 10) {
        got = waitpid(s.pid, &status, WNOHANG);
        if (got == 0) usleep(10000);
    }
    ck_assert_msg(got == s.pid, "tide did not exit on Ctrl-D; output:\n%s", s.out + s.mark);
    s.pid = 0;
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* Teardown: a failed test leaves its REPL running; end it. */
static void kill_repl(void)
{
    if (s.pid > 0) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, NULL, 0);
        s.pid = 0;
    }
    if (s.fd > 0) close(s.fd);
    s.fd = -1;
    free(s.out);
    s.out = NULL;
}

static void teardown(void)
{
    kill_repl();
    remove_tmpdir();
}

START_TEST(test_repl_session)
{
    start_repl();
    free(expect("Ctrl-D to exit\r\ntide> "));

    char *r = eval("1+1\n");
    ck_assert_msg(strstr(r, "\r\n2\r\n") != NULL, "no result 2 in:\n%s", r);
    ck_assert_msg(has_timing(r), "no timing line in:\n%s", r);
    free(r);

    r = eval("x = 3;\n");
    ck_assert_msg(strstr(r, "\n3\r") == NULL, "';' did not silence:\n%s", r);
    free(r);
    assert_contains(eval("x\n"), "\r\n3\r\n");
    r = eval("x + 1;\n");
    ck_assert_msg(strstr(r, "\n4\r") == NULL, "';' did not silence an expression:\n%s", r);
    free(r);

    type_text("function f()\n");
    free(expect(">> "));
    type_text(" return 42\n");
    free(expect(">> "));
    free(eval("end\n"));
    assert_contains(eval("f()\n"), "\r\n42\r\n");

    assert_contains(eval("error(\"boom\")\n"), "boom");
    assert_contains(eval("f() + 1\n"), "\r\n43\r\n"); /* still answering */

    r = command("?tide.zeros\n");
    ck_assert_msg(strstr(r, "HELP-MARKER") && strstr(r, "zeros"), "no help in:\n%s", r);
    ck_assert_msg(strstr(r, "OTHER-SECTION") == NULL, "help ran past its section:\n%s", r);
    ck_assert_msg(strstr(r, "PAGED:") == NULL, "short help was paged:\n%s", r);
    free(r);
    /* help longer than the terminal goes through $PAGER */
    assert_contains(command("?tide.nn\n"), "PAGED:Documented here");
    assert_contains(command("?no_such_name\n"), "no help for 'no_such_name'");
    assert_contains(command("?\n"), "tide REPL");

    stop_repl();
}
END_TEST

START_TEST(test_repl_completion)
{
    start_repl();
    free(expect("Ctrl-D to exit\r\ntide> "));
    /* a field of a table */
    free(eval("comp_table = {alpha_one = 1, beta = 2};\n"));
    type_text("comp_table.alp\t");
    free(expect("comp_table.alpha_one"));
    assert_contains(eval("\n"), "\r\n1\r\n");
    /* a method of a userdata, through its metatable's __index */
    type_text("io.stdout:wri\t");
    free(expect("io.stdout:write"));
    assert_contains(eval("('')\n"), "file (");
    /* the library's functions: tide.zer is also zero_ and zero_grad, so
       TAB completes the common part and a second TAB lists them all */
    type_text("tide.zer\t");
    free(expect("tide.zero"));
    type_text("\t");
    char *listing = expect("tide.zeros_like");
    ck_assert_msg(strstr(listing, "tide.zeros "), "no tide.zeros in the listing:\n%s", listing);
    free(listing);
    type_text("s_l\t");
    free(expect("tide.zeros_like"));
    assert_contains(eval("\n"), "function");
    /* tensor methods, through the function __index's methods table */
    free(eval("x = tide.zeros{2};\n"));
    type_text("x:matm\t");
    free(expect("x:matmul"));
    assert_contains(eval("(tide.ones{2})\n"), "tensor(0");
    stop_repl();
}
END_TEST

START_TEST(test_repl_file_completion)
{
    /* inside a string, TAB completes a file name within the typed
       directory, though '/' and '_' break Lua words */
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/files", tmpdir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/files/sub_dir", tmpdir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    write_file("files/alpha_long-name.txt", "", path, sizeof path);
    start_repl();
    free(expect("Ctrl-D to exit\r\ntide> "));
    snprintf(line, sizeof line, "f = \"%s/files/alp\t", tmpdir);
    type_text(line);
    free(expect("alpha_long-name.txt"));
    type_text("\"\n");
    free(expect("s]\r\ntide> "));
    assert_contains(eval("f:match('[^/]*$')\n"), "\r\nalpha_long-name.txt\r\n");
    snprintf(line, sizeof line, "g = '%s/files/su\t", tmpdir);
    type_text(line);
    free(expect("sub_dir/"));
    type_text("'\n");
    free(expect("s]\r\ntide> "));
    assert_contains(eval("g:sub(-8)\n"), "\r\nsub_dir/\r\n");
    stop_repl();
}
END_TEST

START_TEST(test_repl_interrupt)
{
    /* Ctrl-C inside a model call: "interrupted", not the library file the
       interrupt landed in, and the session goes on */
    start_repl();
    free(expect("Ctrl-D to exit\r\ntide> "));
    free(eval("m = tide.nn.Sequential(tide.nn.Linear(4, 4), tide.nn.ReLU()); "
              "x = tide.randn{1, 4};\n"));
    type_text("while true do m(x) end\n");
    usleep(300000);
    ck_assert_int_eq(write(s.fd, "\x03", 1), 1);
    char *r = expect("s]\r\ntide> ");
    ck_assert_msg(strstr(r, "tide: interrupted") != NULL, "no 'interrupted' in:\n%s", r);
    ck_assert_msg(strstr(r, ".lua") == NULL && strstr(r, "traceback") == NULL,
                  "a library path in:\n%s", r);
    free(r);
    assert_contains(eval("1 + 1\n"), "\r\n2\r\n");
    stop_repl();
}
END_TEST

START_TEST(test_repl_history)
{
    start_repl();
    free(expect("Ctrl-D to exit\r\ntide> "));
    free(eval("1+1\n"));
    free(eval("y = 5;\n"));
    stop_repl();
    char path[512], line[256], all[4096] = "";
    snprintf(path, sizeof path, "%s/home/.tide_history", tmpdir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s was not written", path);
    while (fgets(line, sizeof line, f)) strncat(all, line, sizeof all - strlen(all) - 1);
    fclose(f);
    ck_assert_msg(strstr(all, "1+1\n") && strstr(all, "y = 5;\n"), "history holds:\n%s", all);
}
END_TEST

START_TEST(test_repl_history_multiline)
{
    /* a chunk typed over three prompts is one entry: the next session's
       Ctrl-P brings it all back, and it runs again */
    start_repl();
    free(expect("Ctrl-D to exit\r\ntide> "));
    type_text("function h()\n");
    free(expect(">> "));
    type_text("  return 7\n");
    free(expect(">> "));
    free(eval("end\n"));
    stop_repl();
    kill_repl();
    start_repl_again();
    free(expect("Ctrl-D to exit\r\ntide> "));
    type_text("\x10");
    free(expect("end"));
    free(eval("\n"));
    assert_contains(eval("h()\n"), "\r\n7\r\n");
    stop_repl();
}
END_TEST

static Suite *repl_suite(void)
{
    Suite *suite = suite_create("repl");
    TCase *cmd = tcase_create("command");
    tcase_add_checked_fixture(cmd, setup, remove_tmpdir);
    tcase_set_timeout(cmd, 60);
    tcase_add_test(cmd, test_eval_string);
    tcase_add_test(cmd, test_version);
    tcase_add_test(cmd, test_script_args);
    tcase_add_test(cmd, test_stdin_script);
    tcase_add_test(cmd, test_script_error);
    tcase_add_test(cmd, test_piped_repl);
    tcase_add_test(cmd, test_loss_help);
    tcase_add_test(cmd, test_loss_help_by_module);
    tcase_add_test(cmd, test_piped_tables);
    tcase_add_test(cmd, test_piped_last_result_and_locals);
    tcase_add_test(cmd, test_help_names);
    tcase_add_test(cmd, test_startup_maps_no_gpu_library);
    suite_add_tcase(suite, cmd);
    TCase *repl = tcase_create("repl");
    tcase_add_checked_fixture(repl, setup, teardown);
    tcase_set_timeout(repl, 60);
    tcase_add_test(repl, test_repl_session);
    tcase_add_test(repl, test_repl_completion);
    tcase_add_test(repl, test_repl_history);
    tcase_add_test(repl, test_repl_history_multiline);
    tcase_add_test(repl, test_repl_file_completion);
    tcase_add_test(repl, test_repl_interrupt);
    suite_add_tcase(suite, repl);
    return suite;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *runner = srunner_create(repl_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
