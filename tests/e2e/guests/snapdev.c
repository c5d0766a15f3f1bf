/* snapdev: a guest with devices for the snapshot tests. It fills a few
 * pages with a pattern, reads sector 0 of block device 0, connects to the
 * host's vsock port `port` (default 6000) and sends "before <sector 0>\n",
 * then prints "snapdev: ready" and sleeps until the vsock device reports a
 * transport reset (what a restored VM sees first, virtio 1.2 §5.10.6.6).
 * Then it checks that its connection reads as reset and its pages still
 * hold the pattern, reads sector 0 again (a restore may have pointed the
 * drive at another image), connects again and sends "after <sector 0>\n".
 *
 * Command line: port=P, wait_s=N (default 600) bounds the wait for the
 * reset. Lines:
 *   snapdev: disk '<first 16 bytes of sector 0>'
 *   snapdev: ready
 *   snapdev: transport reset, connection reset
 *   snapdev: memory ok
 *   snapdev: disk '<first 16 bytes>'
 *   snapdev: done
 * Exit status 0, or 1 after a line saying what failed. */
#include "shim.h"

#define PAGE    4096u
#define PAGES   64u
#define TIMEOUT 10000000ull /* microseconds */

static uint8_t sector[SHIM_BLK_SECTOR] __attribute__((aligned(4096)));

static uint64_t word(uint64_t i)
{
    return i * 0x9e3779b97f4a7c15ull ^ 0x5eed;
}

static int fail(const char *what, long ret)
{
    shim_printf("snapdev: %s failed (%ld)\n", what, ret);
    return 1;
}

/* Sector 0's first 16 bytes, printable, into text; 0 or a negative code. */
static int read_disk(char text[17])
{
    struct shim_blk *blk = shim_blk_count() ? shim_blk_get(0) : NULL;
    int ret = blk ? shim_blk_read(blk, 0, sector, sizeof(sector)) : -SHIM_ENODEV;

    if (ret)
        return ret;
    for (int i = 0; i < 16; i++)
        text[i] = sector[i] >= 0x20 && sector[i] < 0x7f ? (char)sector[i] : '.';
    text[16] = '\0';
    shim_printf("snapdev: disk '%s'\n", text);
    return 0;
}

/* Connect to the host's port and send "<word> <text>\n"; the connection
 * number or a negative code. */
static int say(uint32_t port, const char *word, const char *text)
{
    char line[64];
    int c = shim_vsock_connect(port, TIMEOUT);
    long n;

    if (c < 0)
        return c;
    n = shim_snprintf(line, sizeof(line), "%s %s\n", word, text);
    if ((n = shim_vsock_send(c, line, (size_t)n, TIMEOUT)) < 0)
        return (int)n;
    n = shim_vsock_flush(c, TIMEOUT);
    return n < 0 ? (int)n : c;
}

/* Sleep until the device reports a transport reset: 0, or -SHIM_ETIMEDOUT. */
static int wait_reset(uint64_t wait_us)
{
    uint64_t end = shim_time_ns() + wait_us * 1000;
    struct shim_vsock_info info;

    for (;;) {
        shim_vsock_info(&info);
        if (info.transport_resets)
            return 0;
        if (shim_time_ns() >= end)
            return -SHIM_ETIMEDOUT;
        shim_vsock_wait(1000000);
    }
}

int main(void)
{
    uint32_t port = (uint32_t)shim_arg_int("port", 6000);
    uint64_t wait_us = (uint64_t)shim_arg_int("wait_s", 600) * 1000000;
    uint64_t *mem = shim_alloc(PAGES * PAGE, PAGE);
    struct shim_vsock_conn_info ci;
    char text[17], byte;
    int c, ret;

    if (!mem)
        return fail("allocation", -SHIM_ENOMEM);
    for (uint64_t i = 0; i < PAGES * PAGE / 8; i++)
        mem[i] = word(i);
    if ((ret = read_disk(text)))
        return fail("disk read", ret);
    if ((c = say(port, "before", text)) < 0)
        return fail("vsock before", c);
    shim_printf("snapdev: ready\n");
    if ((ret = wait_reset(wait_us)))
        return fail("waiting for the transport reset", ret);
    if (shim_vsock_conn_info(c, &ci) || !ci.reset || ci.established ||
        shim_vsock_recv(c, &byte, 1, 0) != -SHIM_ECONNRESET)
        return fail("the old connection is not reset", 0);
    shim_vsock_close(c);
    shim_printf("snapdev: transport reset, connection reset\n");
    for (uint64_t i = 0; i < PAGES * PAGE / 8; i++)
        if (mem[i] != word(i))
            return fail("memory check", (long)i);
    shim_printf("snapdev: memory ok\n");
    if ((ret = read_disk(text)))
        return fail("disk read after restore", ret);
    if ((c = say(port, "after", text)) < 0)
        return fail("vsock after", c);
    shim_vsock_close(c);
    shim_printf("snapdev: done\n");
    return 0;
}
