/*
 * serial.c - 16550A register model (PC16550D datasheet register map).
 *
 * Receiving: with FCR bit 0 clear the receiver holds one byte (RBR); with
 * it set, 16. The receiver interrupt follows the datasheet's table 4:
 * "received data available" once the FIFO holds its trigger level (1, 4,
 * 8 or 14 bytes by FCR bits 7:6), "character timeout" while it holds
 * fewer. The datasheet raises the timeout when no byte arrived for four
 * character times; flint hands the guest everything it has in one go, so
 * nothing more is on its way and the timeout is due at once. Line status
 * (an overrun, only possible in loopback mode: console input waits for
 * room) comes first, THR empty last.
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
#define IER_RLS  0x04
#define IER_MASK 0x0f

#define IIR_NONE    0x01
#define IIR_THRE    0x02
#define IIR_RDA     0x04
#define IIR_RLS     0x06
#define IIR_CTI     0x0c
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_TRIGGER  0xc0

#define LCR_DLAB 0x80

#define MCR_DTR      0x01
#define MCR_RTS      0x02
#define MCR_OUT1     0x04
#define MCR_OUT2     0x08
#define MCR_LOOPBACK 0x10
#define MCR_MASK     0x1f

#define LSR_DR   0x01
#define LSR_OE   0x02
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

void serial_set_rx_ready(struct serial *s, void (*rx_ready)(void *), void *opaque)
{
    pthread_mutex_lock(&s->lock);
    s->rx_ready = rx_ready;
    s->rx_opaque = opaque;
    pthread_mutex_unlock(&s->lock);
}

static bool fifo_on(const struct serial_regs *r)
{
    return r->fcr & FCR_ENABLE;
}

static uint32_t rx_capacity(const struct serial_regs *r)
{
    return fifo_on(r) ? SERIAL_FIFO_LEN : 1;
}

static uint32_t rx_trigger(const struct serial_regs *r)
{
    static const uint8_t levels[4] = {1, 4, 8, 14};

    return fifo_on(r) ? levels[(r->fcr & FCR_TRIGGER) >> 6] : 1;
}

static uint8_t serial_iir(const struct serial_regs *r)
{
    uint8_t fifo = fifo_on(r) ? IIR_FIFO_ON : 0;

    if ((r->ier & IER_RLS) && (r->lsr_err & LSR_OE))
        return fifo | IIR_RLS;
    if ((r->ier & IER_RDA) && r->rx_count)
        return fifo | (r->rx_count >= rx_trigger(r) ? IIR_RDA : IIR_CTI);
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

static uint32_t rx_space_locked(const struct serial_regs *r)
{
    if (r->mcr & MCR_LOOPBACK)
        return 0;
    return r->rx_count < rx_capacity(r) ? rx_capacity(r) - r->rx_count : 0;
}

/* Room appeared (a read, a FIFO reset, loopback off): wake the input side
 * if it waits for it, once the lock is dropped. */
static void rx_room_changed(struct serial *s)
{
    if (s->rx_waiting && rx_space_locked(&s->regs)) {
        s->rx_waiting = false;
        s->rx_notify_due = true;
    }
}

static void rx_reset(struct serial *s)
{
    s->regs.rx_head = s->regs.rx_count = 0;
    rx_room_changed(s);
}

/* A byte the serial input delivered while the receiver is full is an
 * overrun: the FIFO keeps what it holds and the new byte is lost; without
 * the FIFO the new byte replaces the unread one (PC16550D, LSR bit 1). */
static void rx_push(struct serial_regs *r, uint8_t byte)
{
    if (r->rx_count < rx_capacity(r)) {
        r->rx_fifo[(r->rx_head + r->rx_count) % SERIAL_FIFO_LEN] = byte;
        r->rx_count++;
        return;
    }
    r->lsr_err |= LSR_OE;
    if (!fifo_on(r))
        r->rx_fifo[r->rx_head] = byte;
}

static uint8_t rx_pop(struct serial *s)
{
    struct serial_regs *r = &s->regs;
    uint8_t byte;

    if (!r->rx_count)
        return 0;
    byte = r->rx_fifo[r->rx_head];
    r->rx_head = (r->rx_head + 1) % SERIAL_FIFO_LEN;
    r->rx_count--;
    rx_room_changed(s);
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

static uint8_t serial_msr(const struct serial_regs *r)
{
    uint8_t v = 0;

    if (!(r->mcr & MCR_LOOPBACK))
        return MSR_DCD | MSR_DSR | MSR_CTS;
    v |= (r->mcr & MCR_RTS) ? MSR_CTS : 0;
    v |= (r->mcr & MCR_DTR) ? MSR_DSR : 0;
    v |= (r->mcr & MCR_OUT1) ? MSR_RI : 0;
    v |= (r->mcr & MCR_OUT2) ? MSR_DCD : 0;
    return v;
}

static uint8_t serial_read_reg(struct serial *s, unsigned reg)
{
    struct serial_regs *r = &s->regs;
    uint8_t v;

    switch (reg) {
    case REG_DATA:
        return (r->lcr & LCR_DLAB) ? r->dll : rx_pop(s);
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
        /* Reading LSR clears the error bits (and so a line status IRQ). */
        v = LSR_THRE | LSR_TEMT | r->lsr_err | (r->rx_count ? LSR_DR : 0);
        r->lsr_err = 0;
        return v;
    case REG_MSR:
        return serial_msr(r);
    default:
        return r->scr;
    }
}

/* FCR: bit 0 enables the FIFOs and gates every other bit; changing it
 * empties them (PC16550D, FCR). */
static void serial_write_fcr(struct serial *s, uint8_t v)
{
    struct serial_regs *r = &s->regs;
    bool was_on = fifo_on(r);

    r->fcr = (v & FCR_ENABLE) ? (v & (FCR_ENABLE | FCR_TRIGGER)) : 0;
    if (was_on != fifo_on(r) || ((v & FCR_ENABLE) && (v & FCR_CLEAR_RX)))
        rx_reset(s);
    /* A lower trigger level may make received data due now. */
    serial_raise(s);
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
        serial_write_fcr(s, v);
        break;
    case REG_LCR:
        r->lcr = v;
        break;
    case REG_MCR:
        r->mcr = v & MCR_MASK;
        rx_room_changed(s); /* leaving loopback reconnects the input */
        break;
    case REG_SCR:
        r->scr = v;
        break;
    default:
        break; /* LSR and MSR are read-only */
    }
}

/* Drop the lock, then tell the input side about room, outside the lock:
 * the callback may take its own. */
static void serial_unlock(struct serial *s)
{
    bool notify = s->rx_notify_due && s->rx_ready;
    void (*fn)(void *) = s->rx_ready;
    void *opaque = s->rx_opaque;

    s->rx_notify_due = false;
    pthread_mutex_unlock(&s->lock);
    if (notify)
        fn(opaque);
}

static void serial_bus_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct serial *s = opaque;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++)
        data[i] = offset + i < SERIAL_REG_COUNT ? serial_read_reg(s, offset + i) : 0xff;
    serial_unlock(s);
}

static void serial_bus_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct serial *s = opaque;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++)
        if (offset + i < SERIAL_REG_COUNT)
            serial_write_reg(s, offset + i, data[i]);
    serial_unlock(s);
}

size_t serial_rx_space(struct serial *s)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = rx_space_locked(&s->regs);
    s->rx_waiting = n == 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

size_t serial_push_input(struct serial *s, const uint8_t *buf, size_t len)
{
    size_t n = 0, room;

    pthread_mutex_lock(&s->lock);
    room = rx_space_locked(&s->regs);
    for (; n < len && n < room; n++)
        rx_push(&s->regs, buf[n]);
    if (n)
        serial_raise(s);
    if (n < len)
        s->rx_waiting = true;
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
    snap_put_u8(w, r->lsr_err);
    snap_put_u8(w, r->thr_empty_irq);
    snap_put_u32(w, r->rx_head);
    snap_put_u32(w, r->rx_count);
    snap_put_bytes(w, r->rx_fifo, SERIAL_FIFO_LEN);
    snap_section_end(w, mark);
    pthread_mutex_unlock(&s->lock);
}

static void serial_check(const struct serial_regs *g, struct snap_reader *r)
{
    if (g->ier & ~IER_MASK)
        snap_fail(r, "serial IER has bits the UART does not implement");
    else if (g->mcr & ~MCR_MASK)
        snap_fail(r, "serial MCR has bits the UART does not implement");
    else if (g->fcr & ~(FCR_ENABLE | FCR_TRIGGER) || (g->fcr && !(g->fcr & FCR_ENABLE)))
        snap_fail(r, "serial FCR holds more than the FIFO enable and trigger bits");
    else if (g->lsr_err & ~LSR_OE)
        snap_fail(r, "serial line status error holds more than the overrun bit");
    else if (g->thr_empty_irq > 1)
        snap_fail(r, "serial THRE interrupt flag is neither 0 nor 1");
    else if (g->rx_head >= SERIAL_FIFO_LEN || g->rx_count > SERIAL_FIFO_LEN ||
             (!(g->fcr & FCR_ENABLE) && g->rx_count > 1))
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
    g.lsr_err = snap_get_u8(&sec);
    g.thr_empty_irq = snap_get_u8(&sec);
    g.rx_head = snap_get_u32(&sec);
    g.rx_count = snap_get_u32(&sec);
    snap_get_bytes(&sec, g.rx_fifo, SERIAL_FIFO_LEN);
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
