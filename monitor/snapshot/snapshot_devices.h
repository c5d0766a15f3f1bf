/*
 * snapshot_devices.h - every device's state in a snapshot, as one call each
 * way, so the snapshot code (snapshot.c) need not know the device list.
 */
#ifndef FLINT_SNAPSHOT_DEVICES_H
#define FLINT_SNAPSHOT_DEVICES_H

#include "snap_io.h"

#include <stdbool.h>

struct vmm;

/* True while a device has I/O in flight whose completion would still
 * write guest memory or a ring (block requests, net RX/TX): the snapshot
 * code runs the event loop until it is false before saving anything. */
bool vmm_devices_busy(struct vmm *vmm);

/* Write the state of every device of a paused VM with no I/O in flight
 * (legacy devices, then each virtio slot in order: transport, queues and
 * the device's own state). Returns 0 or -errno. */
int vmm_devices_save(struct vmm *vmm, struct snap_writer *w);

/* Read it back into a VM built from the same configuration (devices
 * created and attached, vCPUs not running). Every value is checked; on
 * error returns -EBADMSG with r->what naming what was wrong, or -errno. */
int vmm_devices_load(struct vmm *vmm, struct snap_reader *r);

#endif /* FLINT_SNAPSHOT_DEVICES_H */
