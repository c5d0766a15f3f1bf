/*
 * i8042.c - enough of the PS/2 controller for Linux's i8042 driver with
 * i8042.noaux/nomux/dumbkbd, and the CPU reset command (0xFE) that
 * `reboot=k` uses.
 */
#include "legacy.h"

#include <flint-abi.h>

#include <errno.h>
#include <string.h>

#define I8042_DATA_PORT 0x60

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_CMD 0x08

#define CB_KBD_INT 0x01

enum {
    CMD_READ_CB = 0x20,
    CMD_WRITE_CB = 0x60,
    CMD_AUX_DISABLE = 0xa7,
    CMD_AUX_ENABLE = 0xa8,
    CMD_SELF_TEST = 0xaa,
    CMD_KBD_TEST = 0xab,
    CMD_KBD_DISABLE = 0xad,
    CMD_KBD_ENABLE = 0xae,
    CMD_WRITE_KBD_OUT = 0xd2,
};

#define KBD_ACK          0xfa
#define KBD_RESET        0xff
#define KBD_SELF_TEST_OK 0xaa

void i8042_init(struct i8042 *k, vm_exit_fn on_reset, void *exit_opaque,
                void (*irq_trigger)(void *), void *irq_opaque)
{
    memset(k, 0, sizeof(*k));
    pthread_mutex_init(&k->lock, NULL);
    k->on_reset = on_reset;
    k->exit_opaque = exit_opaque;
    k->irq_trigger = irq_trigger;
    k->irq_opaque = irq_opaque;
    /* Keyboard interrupt on, system flag, scancode translation. */
    k->regs.cmd_byte = 0x45;
}

static void outbuf_push(struct i8042 *k, uint8_t byte)
{
    struct i8042_regs *r = &k->regs;

    if (r->out_count == I8042_OUTBUF)
        return;
    r->outbuf[(r->out_head + r->out_count) % I8042_OUTBUF] = byte;
    r->out_count++;
    if ((r->cmd_byte & CB_KBD_INT) && k->irq_trigger)
        k->irq_trigger(k->irq_opaque);
}

static uint8_t outbuf_pop(struct i8042_regs *r)
{
    uint8_t byte;

    if (!r->out_count)
        return 0;
    byte = r->outbuf[r->out_head];
    r->out_head = (r->out_head + 1) % I8042_OUTBUF;
    r->out_count--;
    return byte;
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
    struct i8042_regs *r = &k->regs;

    r->last_was_cmd = 1;
    switch (cmd) {
    case CMD_READ_CB:
        outbuf_push(k, r->cmd_byte);
        break;
    case CMD_WRITE_CB:
    case CMD_WRITE_KBD_OUT:
        r->pending_cmd = cmd;
        break;
    case CMD_SELF_TEST:
        outbuf_push(k, 0x55);
        break;
    case CMD_KBD_TEST:
        outbuf_push(k, 0x00);
        break;
    case CMD_KBD_DISABLE:
        r->cmd_byte |= 0x10;
        break;
    case CMD_KBD_ENABLE:
        r->cmd_byte &= (uint8_t)~0x10;
        break;
    case FLINT_I8042_RESET:
        if (k->on_reset)
            k->on_reset(k->exit_opaque, 0, "guest reset the CPU through the i8042 controller");
        break;
    default:
        /* Aux port and output-port commands: nothing is attached. */
        break;
    }
}

static void i8042_data_write(struct i8042 *k, uint8_t v)
{
    struct i8042_regs *r = &k->regs;
    uint8_t cmd = r->pending_cmd;

    r->last_was_cmd = 0;
    r->pending_cmd = 0;
    if (cmd == CMD_WRITE_CB) {
        r->cmd_byte = v;
    } else if (cmd == CMD_WRITE_KBD_OUT) {
        outbuf_push(k, v);
    } else {
        /* A command to the keyboard itself: acknowledge it. */
        outbuf_push(k, KBD_ACK);
        if (v == KBD_RESET)
            outbuf_push(k, KBD_SELF_TEST_OK);
    }
}

static void data_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct i8042 *k = opaque;

    (void)offset;
    pthread_mutex_lock(&k->lock);
    memset(data, 0, len);
    data[0] = outbuf_pop(&k->regs);
    /* The next byte moves into the output buffer: interrupt again, as the
     * guest's handler reads one byte per interrupt. */
    if (k->regs.out_count && (k->regs.cmd_byte & CB_KBD_INT) && k->irq_trigger)
        k->irq_trigger(k->irq_opaque);
    pthread_mutex_unlock(&k->lock);
}

static void data_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct i8042 *k = opaque;

    (void)offset;
    (void)len;
    pthread_mutex_lock(&k->lock);
    i8042_data_write(k, data[0]);
    pthread_mutex_unlock(&k->lock);
}

static void cmd_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct i8042 *k = opaque;
    struct i8042_regs *r = &k->regs;

    (void)offset;
    pthread_mutex_lock(&k->lock);
    memset(data, 0, len);
    data[0] = STATUS_SYS | (r->out_count ? STATUS_OBF : 0) | (r->last_was_cmd ? STATUS_CMD : 0);
    pthread_mutex_unlock(&k->lock);
}

static void cmd_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct i8042 *k = opaque;

    (void)offset;
    (void)len;
    pthread_mutex_lock(&k->lock);
    i8042_command(k, data[0]);
    pthread_mutex_unlock(&k->lock);
}

const struct bus_dev_ops i8042_data_ops = {
    .name = "i8042-data", .read = data_read, .write = data_write};
const struct bus_dev_ops i8042_cmd_ops = {
    .name = "i8042-cmd", .read = cmd_read, .write = cmd_write};

int i8042_push_keys(struct i8042 *k, const uint8_t *codes, unsigned n)
{
    int rc = 0;

    pthread_mutex_lock(&k->lock);
    if (n > I8042_OUTBUF - k->regs.out_count) {
        rc = -ENOSPC;
    } else {
        for (unsigned i = 0; i < n; i++)
            outbuf_push(k, codes[i]);
    }
    pthread_mutex_unlock(&k->lock);
    return rc;
}

int i8042_register(struct i8042 *k, struct bus *pio)
{
    int err = bus_register(pio, I8042_DATA_PORT, 1, &i8042_data_ops, k);
    return err ? err : bus_register(pio, FLINT_PORT_I8042_CMD, 1, &i8042_cmd_ops, k);
}

/* ---- snapshots ---- */

#define SNAP_TAG_I8042 SNAP_TAG('I', '8', '0', '4')

void i8042_save(struct i8042 *k, struct snap_writer *w)
{
    const struct i8042_regs *r = &k->regs;
    size_t mark;

    pthread_mutex_lock(&k->lock);
    mark = snap_section_begin(w, SNAP_TAG_I8042);
    snap_put_u8(w, r->cmd_byte);
    snap_put_u8(w, r->pending_cmd);
    snap_put_u8(w, r->last_was_cmd);
    snap_put_u32(w, r->out_head);
    snap_put_u32(w, r->out_count);
    snap_put_bytes(w, r->outbuf, I8042_OUTBUF);
    snap_section_end(w, mark);
    pthread_mutex_unlock(&k->lock);
}

int i8042_load(struct i8042 *k, struct snap_reader *r)
{
    struct snap_reader sec;
    struct i8042_regs g;

    if (snap_section_enter(r, SNAP_TAG_I8042, &sec, "i8042 section"))
        return -EBADMSG;
    g.cmd_byte = snap_get_u8(&sec);
    g.pending_cmd = snap_get_u8(&sec);
    g.last_was_cmd = snap_get_u8(&sec);
    g.out_head = snap_get_u32(&sec);
    g.out_count = snap_get_u32(&sec);
    snap_get_bytes(&sec, g.outbuf, I8042_OUTBUF);
    if (snap_error(&sec))
        ;
    else if (g.pending_cmd != 0 && g.pending_cmd != CMD_WRITE_CB &&
             g.pending_cmd != CMD_WRITE_KBD_OUT)
        snap_fail(&sec, "i8042 pending command is not one that takes a data byte");
    else if (g.last_was_cmd > 1)
        snap_fail(&sec, "i8042 command flag is neither 0 nor 1");
    else if (g.out_head >= I8042_OUTBUF || g.out_count > I8042_OUTBUF)
        snap_fail(&sec, "i8042 output buffer cursor out of range");
    if (snap_section_leave(&sec)) {
        snap_fail(r, sec.what);
        return -EBADMSG;
    }
    pthread_mutex_lock(&k->lock);
    k->regs = g;
    if (g.out_count && (g.cmd_byte & CB_KBD_INT) && k->irq_trigger)
        k->irq_trigger(k->irq_opaque);
    pthread_mutex_unlock(&k->lock);
    return 0;
}
