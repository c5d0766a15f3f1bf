/*
 * serial.c - 16550A register model (PC16550D datasheet register map).
 */
#include "serial.h"
#include "boot_phases.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum {
    REG_DATA = 0, /* RBR / THR, DLL when DLAB */
    REG_IER = 1,  /* DLM when DLAB */
    REG_IIR = 2,  /* FCR on write */
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define IER_RDA  0x01
#define IER_THRE 0x02
#define IER_MASK 0x0f

#define IIR_NONE     0x01
#define IIR_THRE     0x02
#define IIR_RDA      0x04
#define IIR_FIFO_ON  0xc0
#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR      0x01
#define MCR_RTS      0x02
#define MCR_OUT1     0x04
#define MCR_OUT2     0x08
#define MCR_LOOPBACK 0x10
#define MCR_MASK     0x1f

#define LSR_DR   0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI  0x40
#define MSR_DCD 0x80

void serial_init(struct serial *s, int out_fd, void (*irq_trigger)(void *), void *irq_opaque)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->out_fd = out_fd;
    s->irq_trigger = irq_trigger;
    s->irq_opaque = irq_opaque;
    /* Power-on: 8N1 at 115200 baud (divisor 1), modem lines asserted. */
    s->regs.lcr = 0x03;
    s->regs.mcr = MCR_OUT2;
    s->regs.dll = 0x01;
}

static uint8_t serial_iir(const struct serial_regs *r)
{
    uint8_t fifo = (r->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0;

    if ((r->ier & IER_RDA) && r->rx_count)
        return fifo | IIR_RDA;
    if ((r->ier & IER_THRE) && r->thr_empty_irq)
        return fifo | IIR_THRE;
    return fifo | IIR_NONE;
}

/* Pulse the interrupt line if an enabled interrupt is pending. */
static void serial_raise(struct serial *s)
{
    if (!(serial_iir(&s->regs) & IIR_NONE) && s->irq_trigger)
        s->irq_trigger(s->irq_opaque);
}

static bool rx_push(struct serial_regs *r, uint8_t byte)
{
    if (r->rx_count == SERIAL_RX_FIFO)
        return false;
    r->rx_fifo[(r->rx_head + r->rx_count) % SERIAL_RX_FIFO] = byte;
    r->rx_count++;
    return true;
}

static uint8_t rx_pop(struct serial_regs *r)
{
    uint8_t byte;

    if (!r->rx_count)
        return 0;
    byte = r->rx_fifo[r->rx_head];
    r->rx_head = (r->rx_head + 1) % SERIAL_RX_FIFO;
    r->rx_count--;
    return byte;
}

void serial_write_console(struct serial *s, const uint8_t *buf, size_t len)
{
    /* The paravirtual console's output is console output too (boot_phases.h). */
    if (len) {
        boot_phase_end(&boot_phases, BOOT_PHASE_FIRST_CONSOLE);
        boot_phase_begin(&boot_phases, BOOT_PHASE_GUEST_EXIT);
    }
    pthread_mutex_lock(&s->lock);
    while (len && s->out_fd >= 0) {
        ssize_t n = write(s->out_fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->out_fd = -1; /* as serial_transmit: a closed stdout only loses output */
            break;
        }
        buf += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&s->lock);
}

static void serial_transmit(struct serial *s, uint8_t byte)
{
    struct serial_regs *r = &s->regs;

    boot_phase_end(&boot_phases, BOOT_PHASE_FIRST_CONSOLE);
    boot_phase_begin(&boot_phases, BOOT_PHASE_GUEST_EXIT);
    if (r->mcr & MCR_LOOPBACK) {
        rx_push(r, byte);
    } else if (s->out_fd >= 0) {
        /* A console write that fails (closed stdout) only loses output. */
        if (write(s->out_fd, &byte, 1) < 0)
            s->out_fd = -1;
    }
    r->thr_empty_irq = 1;
    serial_raise(s);
}

static uint8_t serial_read_reg(struct serial *s, unsigned reg)
{
    struct serial_regs *r = &s->regs;
    uint8_t v;

    switch (reg) {
    case REG_DATA:
        return (r->lcr & LCR_DLAB) ? r->dll : rx_pop(r);
    case REG_IER:
        return (r->lcr & LCR_DLAB) ? r->dlm : r->ier;
    case REG_IIR:
        v = serial_iir(r);
        /* Reading IIR acknowledges a THRE interrupt it reports. */
        if ((v & 0x0f) == IIR_THRE)
            r->thr_empty_irq = 0;
        return v;
    case REG_LCR:
        return r->lcr;
    case REG_MCR:
        return r->mcr;
    case REG_LSR:
        return LSR_THRE | LSR_TEMT | (r->rx_count ? LSR_DR : 0);
    case REG_MSR:
        if (r->mcr & MCR_LOOPBACK) {
            v = 0;
            v |= (r->mcr & MCR_RTS) ? MSR_CTS : 0;
            v |= (r->mcr & MCR_DTR) ? MSR_DSR : 0;
            v |= (r->mcr & MCR_OUT1) ? MSR_RI : 0;
            v |= (r->mcr & MCR_OUT2) ? MSR_DCD : 0;
            return v;
        }
        return MSR_DCD | MSR_DSR | MSR_CTS;
    default:
        return r->scr;
    }
}

static void serial_write_reg(struct serial *s, unsigned reg, uint8_t v)
{
    struct serial_regs *r = &s->regs;
    uint8_t old;

    switch (reg) {
    case REG_DATA:
        if (r->lcr & LCR_DLAB)
            r->dll = v;
        else
            serial_transmit(s, v);
        break;
    case REG_IER:
        if (r->lcr & LCR_DLAB) {
            r->dlm = v;
            break;
        }
        old = r->ier;
        r->ier = v & IER_MASK;
        /* Enabling the THRE interrupt while THR is empty raises it at once. */
        if ((r->ier & IER_THRE) && !(old & IER_THRE))
            r->thr_empty_irq = 1;
        serial_raise(s);
        break;
    case REG_IIR:
        r->fcr = v & FCR_ENABLE;
        if (v & FCR_CLEAR_RX)
            r->rx_head = r->rx_count = 0;
        break;
    case REG_LCR:
        r->lcr = v;
        break;
    case REG_MCR:
        r->mcr = v & MCR_MASK;
        break;
    case REG_SCR:
        r->scr = v;
        break;
    default:
        break; /* LSR and MSR are read-only */
    }
}

static void serial_bus_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct serial *s = opaque;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++)
        data[i] = offset + i < SERIAL_REG_COUNT ? serial_read_reg(s, offset + i) : 0xff;
    pthread_mutex_unlock(&s->lock);
}

static void serial_bus_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct serial *s = opaque;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++)
        if (offset + i < SERIAL_REG_COUNT)
            serial_write_reg(s, offset + i, data[i]);
    pthread_mutex_unlock(&s->lock);
}

size_t serial_push_input(struct serial *s, const uint8_t *buf, size_t len)
{
    size_t n = 0;

    pthread_mutex_lock(&s->lock);
    while (n < len && rx_push(&s->regs, buf[n]))
        n++;
    if (n)
        serial_raise(s);
    pthread_mutex_unlock(&s->lock);
    return n;
}

const struct bus_dev_ops serial_bus_ops = {
    .name = "serial",
    .read = serial_bus_read,
    .write = serial_bus_write,
};

/* ---- snapshots ---- */

#define SNAP_TAG_SERIAL SNAP_TAG('U', 'A', 'R', 'T')

void serial_save(struct serial *s, struct snap_writer *w)
{
    const struct serial_regs *r = &s->regs;
    size_t mark;

    pthread_mutex_lock(&s->lock);
    mark = snap_section_begin(w, SNAP_TAG_SERIAL);
    snap_put_u8(w, r->ier);
    snap_put_u8(w, r->lcr);
    snap_put_u8(w, r->mcr);
    snap_put_u8(w, r->scr);
    snap_put_u8(w, r->dll);
    snap_put_u8(w, r->dlm);
    snap_put_u8(w, r->fcr);
    snap_put_u8(w, r->thr_empty_irq);
    snap_put_u32(w, r->rx_head);
    snap_put_u32(w, r->rx_count);
    snap_put_bytes(w, r->rx_fifo, SERIAL_RX_FIFO);
    snap_section_end(w, mark);
    pthread_mutex_unlock(&s->lock);
}

static void serial_check(const struct serial_regs *g, struct snap_reader *r)
{
    if (g->ier & ~IER_MASK)
        snap_fail(r, "serial IER has bits the UART does not implement");
    else if (g->mcr & ~MCR_MASK)
        snap_fail(r, "serial MCR has bits the UART does not implement");
    else if (g->fcr & ~FCR_ENABLE)
        snap_fail(r, "serial FCR holds more than the FIFO enable bit");
    else if (g->thr_empty_irq > 1)
        snap_fail(r, "serial THRE interrupt flag is neither 0 nor 1");
    else if (g->rx_head >= SERIAL_RX_FIFO || g->rx_count > SERIAL_RX_FIFO)
        snap_fail(r, "serial receive FIFO cursor out of range");
}

int serial_load(struct serial *s, struct snap_reader *r)
{
    struct snap_reader sec;
    struct serial_regs g;

    if (snap_section_enter(r, SNAP_TAG_SERIAL, &sec, "serial section"))
        return -EBADMSG;
    g.ier = snap_get_u8(&sec);
    g.lcr = snap_get_u8(&sec);
    g.mcr = snap_get_u8(&sec);
    g.scr = snap_get_u8(&sec);
    g.dll = snap_get_u8(&sec);
    g.dlm = snap_get_u8(&sec);
    g.fcr = snap_get_u8(&sec);
    g.thr_empty_irq = snap_get_u8(&sec);
    g.rx_head = snap_get_u32(&sec);
    g.rx_count = snap_get_u32(&sec);
    snap_get_bytes(&sec, g.rx_fifo, SERIAL_RX_FIFO);
    if (!snap_error(&sec))
        serial_check(&g, &sec);
    if (snap_section_leave(&sec)) {
        snap_fail(r, sec.what);
        return -EBADMSG;
    }
    pthread_mutex_lock(&s->lock);
    s->regs = g;
    serial_raise(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}
