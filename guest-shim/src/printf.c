/*
 * printf.c - the small formatter behind shim_printf and shim_snprintf.
 */
#include "shim-internal.h"

/* Output goes to a sink: a buffer (snprintf) or the console (the caller
 * holds the console lock). */
struct sink {
    char *buf;
    size_t size; /* capacity of buf, 0 for none */
    size_t len;  /* bytes produced so far (may exceed size) */
    bool console;
    size_t pending;  /* console: bytes in chunk not yet written */
    char chunk[128]; /* console output goes out in chunks (one exit each) */
};

static void sink_flush(struct sink *s)
{
    if (s->console && s->pending) {
        console_write(s->chunk, s->pending);
        s->pending = 0;
    }
}

static void sink_put(struct sink *s, char c)
{
    if (s->console) {
        if (s->pending == sizeof(s->chunk))
            sink_flush(s);
        s->chunk[s->pending++] = c;
    } else if (s->len < s->size) {
        s->buf[s->len] = c;
    }
    s->len++;
}

static void put_padding(struct sink *s, char c, int n)
{
    while (n-- > 0)
        sink_put(s, c);
}

struct spec {
    bool left, zero, alt;
    int width;
};

static void put_field(struct sink *s, const struct spec *sp, const char *prefix, const char *body,
                      int body_len)
{
    int prefix_len = (int)strlen(prefix);
    int pad = sp->width - prefix_len - body_len;

    if (!sp->left && !sp->zero)
        put_padding(s, ' ', pad);
    while (*prefix)
        sink_put(s, *prefix++);
    if (!sp->left && sp->zero)
        put_padding(s, '0', pad);
    for (int i = 0; i < body_len; i++)
        sink_put(s, body[i]);
    if (sp->left)
        put_padding(s, ' ', pad);
}

static void put_number(struct sink *s, const struct spec *sp, unsigned long long v, unsigned base,
                       bool upper, bool negative)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    int n = 0;

    do {
        tmp[sizeof(tmp) - 1 - n++] = digits[v % base];
        v /= base;
    } while (v);

    const char *prefix = negative ? "-" : "";
    if (sp->alt && base == 16)
        prefix = upper ? "0X" : "0x";
    else if (sp->alt && base == 8)
        prefix = "0";
    put_field(s, sp, prefix, tmp + sizeof(tmp) - n, n);
}

/* Read an integer argument of the length given by the modifier. */
static unsigned long long arg_unsigned(va_list *ap, int longs, bool size)
{
    if (size)
        return va_arg(*ap, size_t);
    if (longs >= 2)
        return va_arg(*ap, unsigned long long);
    if (longs == 1)
        return va_arg(*ap, unsigned long);
    return va_arg(*ap, unsigned int);
}

static long long arg_signed(va_list *ap, int longs, bool size)
{
    if (size)
        return (long long)va_arg(*ap, size_t);
    if (longs >= 2)
        return va_arg(*ap, long long);
    if (longs == 1)
        return va_arg(*ap, long);
    return va_arg(*ap, int);
}

static const char *parse_spec(const char *f, struct spec *sp, va_list *ap)
{
    *sp = (struct spec){0};
    for (;; f++) {
        if (*f == '-')
            sp->left = true;
        else if (*f == '0')
            sp->zero = true;
        else if (*f == '#')
            sp->alt = true;
        else
            break;
    }
    if (*f == '*') {
        sp->width = va_arg(*ap, int);
        if (sp->width < 0) {
            sp->left = true;
            sp->width = -sp->width;
        }
        f++;
    }
    while (*f >= '0' && *f <= '9' && sp->width < 1000)
        sp->width = sp->width * 10 + (*f++ - '0');
    return f;
}

static void format(struct sink *s, const char *f, va_list ap_in)
{
    va_list ap;

    va_copy(ap, ap_in);
    while (*f) {
        if (*f != '%') {
            sink_put(s, *f++);
            continue;
        }
        struct spec sp;
        f = parse_spec(f + 1, &sp, &ap);
        int longs = 0;
        bool size = false;
        for (; *f == 'l' || *f == 'z'; f++) {
            if (*f == 'l')
                longs++;
            else
                size = true;
        }
        switch (*f) {
        case 'd':
        case 'i': {
            long long v = arg_signed(&ap, longs, size);
            unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            put_number(s, &sp, mag, 10, false, v < 0);
            break;
        }
        case 'u':
            put_number(s, &sp, arg_unsigned(&ap, longs, size), 10, false, false);
            break;
        case 'x':
        case 'X':
            put_number(s, &sp, arg_unsigned(&ap, longs, size), 16, *f == 'X', false);
            break;
        case 'o':
            put_number(s, &sp, arg_unsigned(&ap, longs, size), 8, false, false);
            break;
        case 'p':
            sp.alt = true;
            put_number(s, &sp, (uintptr_t)va_arg(ap, void *), 16, false, false);
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            sp.zero = false;
            put_field(s, &sp, "", str, (int)strlen(str));
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            sp.zero = false;
            put_field(s, &sp, "", &c, 1);
            break;
        }
        case '%':
            sink_put(s, '%');
            break;
        case '\0':
            va_end(ap);
            return;
        default: /* unknown conversion: print it verbatim */
            sink_put(s, '%');
            sink_put(s, *f);
            break;
        }
        f++;
    }
    va_end(ap);
}

int shim_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = {.buf = buf, .size = size};

    format(&s, fmt, ap);
    if (size > 0)
        buf[s.len < size ? s.len : size - 1] = '\0';
    return (int)s.len;
}

int shim_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = shim_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int shim_vprintf(const char *fmt, va_list ap)
{
    struct sink s = {.console = true};
    bool locked = console_lock();

    format(&s, fmt, ap);
    sink_flush(&s);
    if (locked)
        console_unlock();
    return (int)s.len;
}

int shim_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = shim_vprintf(fmt, ap);
    va_end(ap);
    return n;
}
