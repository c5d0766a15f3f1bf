/* Unit tests: Firecracker's log line format and the log destination. */
#include <criterion/criterion.h>

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Test(log, firecracker_line_format)
{
    char line[256];
    int n;

    /* 2021-03-04T05:06:07, a day after the leap day. */
    n = log_format_fc(line, sizeof(line), 1614834367, 8, "vm-1", "vmm", LOG_INFO, false, NULL, 0,
                      "booted");
    cr_assert_str_eq(line, "2021-03-04T05:06:07.000000008 [vm-1:vmm] booted");
    cr_assert_eq(n, (int)strlen(line));
    log_format_fc(line, sizeof(line), 0, 999999999, "anonymous-instance", "vcpu0", LOG_WARN, true,
                  NULL, 0, "x");
    cr_assert_str_eq(line, "1970-01-01T00:00:00.999999999 [anonymous-instance:vcpu0:WARN] x");
    log_format_fc(line, sizeof(line), 951782400, 0, "i", "t", LOG_ERROR, true, "monitor/vmm.c", 12,
                  "y");
    cr_assert_str_eq(line, "2000-02-29T00:00:00.000000000 [i:t:ERROR:monitor/vmm.c:12] y");
    log_format_fc(line, sizeof(line), 4102444799, 0, "i", "t", LOG_TRACE, false, "f.c", 1, "z");
    cr_assert_str_eq(line, "2099-12-31T23:59:59.000000000 [i:t:f.c:1] z");
    n = log_format_fc(line, 10, 0, 0, "i", "t", LOG_INFO, false, NULL, 0, "long message");
    cr_assert_eq(n, 9, "truncated to the buffer");
    cr_assert_eq(strlen(line), 9);
}

Test(log, path_gets_formatted_lines_and_pipe_never_blocks)
{
    char dir[] = "/tmp/flint-log-XXXXXX", fifo[64], buf[70000];
    int rd;
    ssize_t n;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    char err[256];
    cr_assert_eq(log_set_path("/nonexistent-dir/x", "id", err, sizeof(err)), -ENOENT);
    cr_assert(strstr(err, "cannot open '/nonexistent-dir/x'"), "%s", err);
    cr_assert_eq(log_set_path(fifo, "vm-9", err, sizeof(err)), 0, "%s", err);
    log_set_level(LOG_INFO);
    log_set_format(true, true);
    rd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    log_info("first");
    n = read(rd, buf, sizeof(buf) - 1);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_assert(strstr(buf, " [vm-9:main:INFO:"), "%s", buf);
    cr_assert(strstr(buf, "test_log.c:"), "%s", buf);
    cr_assert(strstr(buf, "] first\n"), "%s", buf);
    /* Nobody reads: the pipe fills, lines are dropped, nothing blocks. */
    unsigned long long before = log_dropped();
    for (int i = 0; i < 2000; i++)
        log_info("filler line %d, long enough to fill a pipe buffer quickly ..........", i);
    cr_assert_gt(log_dropped(), before);
    close(rd);
    unlink(fifo);
    rmdir(dir);
}
