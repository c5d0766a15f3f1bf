/*
 * cmdline.c - the PVH command line: key=value words and virtio-mmio devices.
 */
#include "shim-internal.h"

#define ARGS_MAX        128
#define VIRTIO_MMIO_MAX 32

struct arg {
    const char *key;
    const char *value;
};

struct virtio_mmio_dev {
    uint64_t base, size;
    unsigned irq;
};

static char cmdline[FLINT_CMDLINE_MAX];
static char words[FLINT_CMDLINE_MAX]; /* cmdline split in place into NUL-ended words */
static struct arg args[ARGS_MAX];
static unsigned nargs;
static struct virtio_mmio_dev virtio_devs[VIRTIO_MMIO_MAX];
static unsigned nvirtio;

const char *shim_cmdline(void)
{
    return cmdline;
}

const char *shim_arg(const char *key)
{
    for (unsigned i = nargs < ARGS_MAX ? nargs : ARGS_MAX; i-- > 0;) {
        if (strcmp(args[i].key, key) == 0)
            return args[i].value;
    }
    return NULL;
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Unsigned integer in C syntax (0x hex, 0 octal, else decimal). Returns 0
 * and sets *end past the digits, or -1 for no digits or overflow. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    unsigned base = 10;
    uint64_t v = 0;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && digit_value(s[2]) < 16) {
        base = 16;
        s += 2;
    } else if (s[0] == '0') {
        base = 8;
    }
    if (digit_value(*s) >= (int)base)
        return -1;
    for (int d; (d = digit_value(*s)) < (int)base; s++) {
        if (v > (UINT64_MAX - (unsigned)d) / base)
            return -1;
        v = v * base + (unsigned)d;
    }
    *end = s;
    *out = v;
    return 0;
}

long long shim_arg_int(const char *key, long long def)
{
    const char *s = shim_arg(key), *end;
    bool negative = false;
    uint64_t v;

    if (!s)
        return def;
    if (*s == '-' || *s == '+')
        negative = *s++ == '-';
    if (parse_u64(s, &end, &v) || *end)
        return def;
    if (negative)
        return v <= (uint64_t)INT64_MAX + 1 ? (long long)(0 - v) : def;
    return v <= (uint64_t)INT64_MAX ? (long long)v : def;
}

/* Linux memparse(): a number with an optional K/M/G/T/P/E suffix. */
static int parse_size(const char *s, const char **end, uint64_t *out)
{
    static const char suffixes[] = "kmgtpe";
    uint64_t v;

    if (parse_u64(s, &s, &v))
        return -1;
    for (unsigned i = 0; suffixes[i]; i++) {
        if ((*s | 0x20) == suffixes[i]) {
            unsigned shift = 10 * (i + 1);
            if (v > (UINT64_MAX >> shift))
                return -1;
            v <<= shift;
            s++;
            break;
        }
    }
    *end = s;
    *out = v;
    return 0;
}

/* `<size>@<base>:<irq>[:<id>]` as Linux's virtio_mmio vm_cmdline_set()
 * accepts it (irq must be non-zero; the id is ignored). */
static int parse_virtio_mmio(const char *s, struct virtio_mmio_dev *dev)
{
    uint64_t size, base, irq, id;

    if (parse_size(s, &s, &size) || *s++ != '@' || parse_u64(s, &s, &base) || *s++ != ':' ||
        parse_u64(s, &s, &irq))
        return -1;
    if (*s == ':' && parse_u64(s + 1, &s, &id))
        return -1;
    if (*s || size == 0 || base + size < base || irq == 0 || irq > 255)
        return -1;
    *dev = (struct virtio_mmio_dev){.base = base, .size = size, .irq = (unsigned)irq};
    return 0;
}

unsigned shim_virtio_mmio_count(void)
{
    return nvirtio;
}

int shim_virtio_mmio_get(unsigned i, uint64_t *base, uint64_t *size, unsigned *irq)
{
    if (i >= nvirtio)
        return -1;
    if (base)
        *base = virtio_devs[i].base;
    if (size)
        *size = virtio_devs[i].size;
    if (irq)
        *irq = virtio_devs[i].irq;
    return 0;
}

static void add_arg(char *key, char *value)
{
    if (nargs == ARGS_MAX) {
        shim_printf("shim: more than %u arguments, ignoring '%s' and the rest\n", ARGS_MAX, key);
        nargs++;
        return;
    }
    if (nargs > ARGS_MAX)
        return;
    args[nargs++] = (struct arg){key, value};
    if (strcmp(key, "virtio_mmio.device") != 0)
        return;
    if (nvirtio == VIRTIO_MMIO_MAX)
        shim_printf("shim: more than %u virtio-mmio devices, ignoring %s\n", VIRTIO_MMIO_MAX,
                    value);
    else if (parse_virtio_mmio(value, &virtio_devs[nvirtio]) == 0)
        nvirtio++;
    else
        shim_printf("shim: malformed virtio_mmio.device=%s ignored\n", value);
}

/* Split `words` like Linux's next_arg(): words end at spaces outside double
 * quotes; the first '=' ends the key; quotes around the value (or the whole
 * word) are dropped. */
static void split_words(void)
{
    char *p = words;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            return;
        char *key = p, *eq = NULL;
        bool quoted = false;
        for (; *p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
            if (*p == '"')
                quoted = !quoted;
            else if (*p == '=' && !eq)
                eq = p;
        }
        if (*p)
            *p++ = '\0';
        static char empty[1];
        char *value = empty;
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (*key == '"')
            key++;
        size_t vlen = strlen(value);
        if (*value == '"') {
            value++;
            vlen--;
        }
        if (vlen && value[vlen - 1] == '"')
            value[vlen - 1] = '\0';
        if (*key)
            add_arg(key, value);
    }
}

void cmdline_init(uint64_t paddr)
{
    const char *src = phys_ptr(paddr);
    size_t n = 0;

    /* Read at most FLINT_CMDLINE_MAX - 1 bytes, never past the 32-bit
     * MMIO gap (the identity map ends at 4 GiB). */
    if (paddr && paddr < FLINT_MMIO_GAP_START) {
        uint64_t room = FLINT_MMIO_GAP_START - paddr;
        while (n < sizeof(cmdline) - 1 && n < room && src[n])
            n++;
        memcpy(cmdline, src, n);
    }
    cmdline[n] = '\0';
    memcpy(words, cmdline, n + 1);
    split_words();
}
