/* echoline: read console lines and answer each one, upper-cased, as
 * "echo: LINE"; the line "quit" ends it with status 0. With shim_getc's
 * timeout: a line not finished within 120 s ends it with status 1. */
#include "shim.h"

#define LINE_MAX 128

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* One line: '\r' or '\n' ends it, an empty line is skipped. Returns its
 * length, or -1 on a timeout. */
static int read_line(char *line)
{
    int n = 0;

    for (;;) {
        int c = shim_getc_timeout(120000000ull);
        if (c < 0)
            return -1;
        if (c == '\r' || c == '\n') {
            if (n)
                break;
            continue;
        }
        if (n < LINE_MAX - 1)
            line[n++] = (char)c;
    }
    line[n] = '\0';
    return n;
}

int main(void)
{
    char line[LINE_MAX];
    unsigned lines = 0;

    shim_puts("echoline: ready");
    while (read_line(line) >= 0) {
        if (!strcmp(line, "quit")) {
            shim_printf("echoline: %u lines, %llu halts\n", lines,
                        (unsigned long long)shim_halt_count());
            return 0;
        }
        for (char *p = line; *p; p++)
            *p = upper(*p);
        shim_printf("echo: %s\n", line);
        lines++;
    }
    shim_puts("echoline: timed out");
    return 1;
}
