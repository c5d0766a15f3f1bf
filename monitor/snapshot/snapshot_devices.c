/*
 * snapshot_devices.c - every device's state in a snapshot
 * (snapshot_devices.h): the legacy devices, then each virtio slot in slot
 * order. Each device saves and loads itself (its own file); this file
 * only walks the list and checks that the snapshot's list is the
 * configuration's.
 *
 * Layout: a "DEVS" section holding the UART, i8042 and boot timer
 * sections, the number of virtio slots, and per slot a "SLOT" section:
 * device type, the configuration's id of the device (drive_id, iface_id,
 * "vsock"), then the transport's section with the device's inside it.
 */
#include "snapshot_devices.h"
#include "vmm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SNAP_TAG_DEVICES SNAP_TAG('D', 'E', 'V', 'S')
#define SNAP_TAG_SLOT    SNAP_TAG('S', 'L', 'O', 'T')
#define SLOT_ID_MAX      64

/* Room for a message naming a difference (r->what points here; one load
 * per process). */
static char snapshot_devices_why[256];

/* The configuration's name for slot i (vmm_attach_virtio's order: drives,
 * network interfaces, vsock), and its kind for messages. */
static const char *slot_id(const struct vmm *vmm, unsigned i, char *buf, size_t len,
                           const char **kind)
{
    const struct vm_config *cfg = vmm->cfg;

    if (i < vmm->nblks) {
        *kind = "drive";
        if (cfg->drives[i].id)
            return cfg->drives[i].id;
        snprintf(buf, len, "blk%u", i);
        return buf;
    }
    i -= vmm->nblks;
    if (i < vmm->nnets) {
        *kind = "network interface";
        if (cfg->nets[i].id)
            return cfg->nets[i].id;
        snprintf(buf, len, "net%u", i);
        return buf;
    }
    *kind = "vsock device";
    return "vsock";
}

bool vmm_devices_busy(struct vmm *vmm)
{
    for (unsigned i = 0; i < vmm->nvirtio; i++)
        if (virtio_mmio_busy(&vmm->virtio[i].t))
            return true;
    return false;
}

static void slot_save(struct vmm *vmm, unsigned i, struct snap_writer *w)
{
    struct virtio_mmio *t = &vmm->virtio[i].t;
    char buf[SLOT_ID_MAX];
    const char *kind, *id = slot_id(vmm, i, buf, sizeof(buf), &kind);
    size_t n = strnlen(id, SLOT_ID_MAX);
    size_t mark = snap_section_begin(w, SNAP_TAG_SLOT);

    snap_put_u32(w, t->ops->device_id);
    snap_put_u8(w, (uint8_t)n);
    snap_put_bytes(w, id, n);
    virtio_mmio_save(t, w);
    snap_section_end(w, mark);
}

int vmm_devices_save(struct vmm *vmm, struct snap_writer *w)
{
    size_t mark;

    /* A completion after this point would change guest memory or a ring
     * the snapshot no longer shows. */
    if (vmm_devices_busy(vmm))
        return -EBUSY;
    mark = snap_section_begin(w, SNAP_TAG_DEVICES);

    serial_save(&vmm->serial, w);
    i8042_save(&vmm->i8042, w);
    boot_timer_save(&vmm->boot_timer, w);
    snap_put_u32(w, vmm->nvirtio);
    for (unsigned i = 0; i < vmm->nvirtio; i++)
        slot_save(vmm, i, w);
    snap_section_end(w, mark);
    return w->err;
}

/* The slot's header must name the device the configuration puts there. */
static int slot_check(struct vmm *vmm, unsigned i, struct snap_reader *sec)
{
    const struct virtio_mmio *t = &vmm->virtio[i].t;
    char buf[SLOT_ID_MAX], saved[SLOT_ID_MAX + 1] = {0};
    const char *kind, *id = slot_id(vmm, i, buf, sizeof(buf), &kind);
    uint32_t type = snap_get_u32(sec);
    uint8_t n = snap_get_u8(sec);

    if (n > SLOT_ID_MAX)
        snap_fail(sec, "device id in the snapshot is too long");
    else
        snap_get_bytes(sec, saved, n);
    if (snap_error(sec))
        return -EBADMSG;
    if (type != t->ops->device_id) {
        snprintf(snapshot_devices_why, sizeof(snapshot_devices_why),
                 "virtio slot %u: the snapshot has a device of type %u, the configuration a %s "
                 "(%s)",
                 i, type, kind, id);
        snap_fail(sec, snapshot_devices_why);
    } else if (strncmp(saved, id, SLOT_ID_MAX) != 0) {
        snprintf(snapshot_devices_why, sizeof(snapshot_devices_why),
                 "virtio slot %u: the snapshot's %s is '%s', the configuration's '%s'", i, kind,
                 saved, id);
        snap_fail(sec, snapshot_devices_why);
    }
    return snap_error(sec);
}

static int slot_load(struct vmm *vmm, unsigned i, struct snap_reader *r)
{
    struct snap_reader sec;
    int rc;

    if (snap_section_enter(r, SNAP_TAG_SLOT, &sec, "virtio slot section"))
        return -EBADMSG;
    rc = slot_check(vmm, i, &sec);
    if (!rc)
        rc = virtio_mmio_load(&vmm->virtio[i].t, &sec);
    if (!rc && snap_section_leave(&sec))
        rc = -EBADMSG;
    if (rc)
        snap_fail(r, sec.what ? sec.what : "virtio slot state invalid");
    return rc;
}

int vmm_devices_load(struct vmm *vmm, struct snap_reader *r)
{
    struct snap_reader sec;
    uint32_t n;
    int rc = 0;

    if (snap_section_enter(r, SNAP_TAG_DEVICES, &sec, "device state section"))
        return -EBADMSG;
    if (serial_load(&vmm->serial, &sec) || i8042_load(&vmm->i8042, &sec) ||
        boot_timer_load(&vmm->boot_timer, &sec))
        rc = -EBADMSG;
    n = snap_get_u32(&sec);
    if (!rc && !snap_error(&sec) && n != vmm->nvirtio) {
        snprintf(snapshot_devices_why, sizeof(snapshot_devices_why),
                 "the snapshot has %u virtio devices, the configuration %u", n, vmm->nvirtio);
        snap_fail(&sec, snapshot_devices_why);
    }
    for (unsigned i = 0; i < vmm->nvirtio && !rc && !snap_error(&sec); i++)
        rc = slot_load(vmm, i, &sec);
    if (snap_section_leave(&sec) || rc) {
        snap_fail(r, sec.what ? sec.what : "device state invalid");
        return rc && rc != -EBADMSG ? rc : -EBADMSG;
    }
    return 0;
}
