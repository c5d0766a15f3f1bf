/* Unit tests: the virtio-mmio register file and status state machine. */
#include <criterion/criterion.h>

#include "virtio_harness.h"

#include <errno.h>

/* A dummy device with two queues that records what the transport did. */
static struct dummy {
    unsigned notifies[2], resets, activations;
    uint8_t config[8];
} dev;

static uint64_t dummy_features(void *d)
{
    (void)d;
    return 1ull << 3;
}

static void dummy_read_config(void *d, uint32_t off, uint8_t *data, unsigned len)
{
    memcpy(data, ((struct dummy *)d)->config + off, len);
}

static void dummy_write_config(void *d, uint32_t off, const uint8_t *data, unsigned len)
{
    memcpy(((struct dummy *)d)->config + off, data, len);
}

static void dummy_activate(void *d, struct virtio_mmio *t)
{
    (void)t;
    ((struct dummy *)d)->activations++;
}

static void dummy_notify(void *d, struct virtio_mmio *t, unsigned q)
{
    (void)t;
    ((struct dummy *)d)->notifies[q]++;
}

static void dummy_reset(void *d)
{
    ((struct dummy *)d)->resets++;
}

static void dummy_save(void *d, struct snap_writer *w)
{
    snap_put_bytes(w, ((struct dummy *)d)->config, sizeof(dev.config));
}

static int dummy_load(void *d, struct virtio_mmio *tr, struct snap_reader *r)
{
    (void)tr;
    snap_get_bytes(r, ((struct dummy *)d)->config, sizeof(dev.config));
    return snap_error(r);
}

static bool dummy_busy(void *d)
{
    (void)d;
    return false;
}

static const struct virtio_dev_ops dummy_ops = {
    .name = "dummy",
    .device_id = 42,
    .num_queues = 2,
    .features = dummy_features,
    .config_size = sizeof(dev.config),
    .read_config = dummy_read_config,
    .write_config = dummy_write_config,
    .activate = dummy_activate,
    .queue_notify = dummy_notify,
    .reset = dummy_reset,
    .save = dummy_save,
    .load = dummy_load,
    .busy = dummy_busy,
};

static struct hdrv h;
static struct virtio_mmio t;
static unsigned irqs;

static void count_irq(void *o)
{
    (void)o;
    irqs++;
}

static const uint64_t F_OK = (1ull << VIRTIO_F_VERSION_1) | (1ull << 3);

static void setup(void)
{
    memset(&dev, 0, sizeof(dev));
    irqs = 0;
    hdrv_init(&h, H_QSIZE);
    cr_assert_eq(virtio_mmio_init(&t, &dummy_ops, &dev, &h.mem, 0xc0001000, 5, count_irq, NULL), 0);
}

static void teardown(void)
{
    guest_mem_destroy(&h.mem);
}

TestSuite(virtio_mmio, .init = setup, .fini = teardown);

/* A device without its snapshot callbacks cannot be attached. */
Test(virtio_mmio, init_refuses_ops_without_snapshot_callbacks)
{
    struct virtio_dev_ops ops = dummy_ops;
    struct virtio_mmio t2;

    ops.save = NULL;
    cr_assert_eq(virtio_mmio_init(&t2, &ops, &dev, &h.mem, 0xc0002000, 6, NULL, NULL), -EINVAL);
    ops = dummy_ops;
    ops.load = NULL;
    cr_assert_eq(virtio_mmio_init(&t2, &ops, &dev, &h.mem, 0xc0002000, 6, NULL, NULL), -EINVAL);
    ops = dummy_ops;
    ops.busy = NULL;
    cr_assert_eq(virtio_mmio_init(&t2, &ops, &dev, &h.mem, 0xc0002000, 6, NULL, NULL), -EINVAL);
}

Test(virtio_mmio, identification_registers)
{
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_VERSION), 2);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_DEVICE_ID), 42);
    mwr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << 3), 1u << 3);
    cr_assert(mrd(&t, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_F_EVENT_IDX));
    mwr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_DEVICE_FEATURES), 1, "VERSION_1 in the high word");
    mwr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
    mwr(&t, VIRTIO_MMIO_QUEUE_SEL, 0);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTQ_MAX_SIZE);
    mwr(&t, VIRTIO_MMIO_QUEUE_SEL, 2);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "no queue 2");
}

Test(virtio_mmio, full_handshake_activates)
{
    uint32_t st = hdriver_init(&h, &t, F_OK, 2);
    cr_assert_eq(st, 0x0f);
    cr_assert_eq(dev.activations, 1);
    mwr(&t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    cr_assert_eq(dev.notifies[1], 1);
    mwr(&t, VIRTIO_MMIO_QUEUE_NOTIFY, 7); /* no such queue: ignored */
    cr_assert_eq(dev.notifies[0] + dev.notifies[1], 1);
}

Test(virtio_mmio, features_ok_refused_without_version_1_or_with_unknown_bits)
{
    uint32_t st = hdriver_init(&h, &t, 1ull << 3, 1);
    cr_assert_eq(st & VIRTIO_STATUS_FEATURES_OK, 0, "legacy-only driver refused");
    st = hdriver_init(&h, &t, F_OK | (1ull << 40), 1);
    cr_assert_eq(st & VIRTIO_STATUS_FEATURES_OK, 0, "unoffered feature refused");
    cr_assert_eq(dev.activations, 0);
}

Test(virtio_mmio, features_frozen_after_features_ok)
{
    hdriver_init(&h, &t, F_OK, 2);
    mwr(&t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    mwr(&t, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
    cr_assert_eq(t.regs.driver_features, F_OK);
}

Test(virtio_mmio, driver_ok_without_features_ok_needs_reset)
{
    mwr(&t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    mwr(&t, VIRTIO_MMIO_STATUS,
        VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
    cr_assert(mrd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    cr_assert_eq(dev.activations, 0);
}

Test(virtio_mmio, clearing_status_bits_needs_reset_and_reset_recovers)
{
    hdriver_init(&h, &t, F_OK, 2);
    unsigned resets = dev.resets;
    mwr(&t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    uint32_t st = mrd(&t, VIRTIO_MMIO_STATUS);
    cr_assert(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    cr_assert_eq(irqs, 1, "config interrupt for the running driver");
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    mwr(&t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    cr_assert_eq(dev.notifies[0], 0, "a device needing reset does no work");
    mwr(&t, VIRTIO_MMIO_STATUS, 0);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_STATUS), 0);
    cr_assert_eq(dev.resets, resets + 1);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    mwr(&t, VIRTIO_MMIO_QUEUE_SEL, 0);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_QUEUE_READY), 0, "queues forgotten");
    cr_assert_eq(hdriver_init(&h, &t, F_OK, 2), 0x0f);
}

Test(virtio_mmio, invalid_queue_setup_needs_reset)
{
    mwr(&t, VIRTIO_MMIO_STATUS, 1 | 2);
    mwr(&t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    mwr(&t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    mwr(&t, VIRTIO_MMIO_STATUS, 1 | 2 | 8);
    mwr(&t, VIRTIO_MMIO_QUEUE_SEL, 0);
    mwr(&t, VIRTIO_MMIO_QUEUE_NUM, 1000); /* above QueueNumMax */
    mwr(&t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)H_DESC);
    mwr(&t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)H_AVAIL);
    mwr(&t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)H_USED);
    mwr(&t, VIRTIO_MMIO_QUEUE_READY, 1);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_QUEUE_READY), 0);
    cr_assert(mrd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

Test(virtio_mmio, ring_outside_ram_needs_reset)
{
    mwr(&t, VIRTIO_MMIO_STATUS, 1 | 2);
    mwr(&t, VIRTIO_MMIO_QUEUE_SEL, 0);
    mwr(&t, VIRTIO_MMIO_QUEUE_NUM, 16);
    mwr(&t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
    mwr(&t, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0x10); /* 64 GiB: not RAM */
    mwr(&t, VIRTIO_MMIO_QUEUE_READY, 1);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_QUEUE_READY), 0);
    cr_assert(mrd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

Test(virtio_mmio, queue_registers_frozen_while_ready)
{
    hdriver_init(&h, &t, F_OK, 2);
    mwr(&t, VIRTIO_MMIO_QUEUE_SEL, 0);
    mwr(&t, VIRTIO_MMIO_QUEUE_NUM, 4);
    mwr(&t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x40000);
    cr_assert_eq(t.queues[0].num, H_QSIZE);
    cr_assert_eq(t.queues[0].desc_gpa, H_DESC);
}

Test(virtio_mmio, config_space_bounds_and_widths)
{
    uint8_t b[8];
    dev.config[0] = 0x11;
    dev.config[7] = 0x77;
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + 7, b, 1);
    cr_assert_eq(b[0], 0x77);
    memset(b, 0xaa, sizeof(b));
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + 6, b, 4); /* crosses the end */
    cr_assert_eq(b[0], 0, "out-of-range config read returns zeros");
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + 0x800, b, 4);
    cr_assert_eq(b[0], 0);
    uint8_t w[2] = {1, 2};
    virtio_mmio_bus_ops.write(&t, VIRTIO_MMIO_CONFIG + 7, w, 2); /* crosses the end */
    cr_assert_eq(dev.config[7], 0x77, "ignored");
    virtio_mmio_bus_ops.write(&t, VIRTIO_MMIO_CONFIG + 2, w, 2);
    cr_assert_eq(dev.config[3], 2);
}

Test(virtio_mmio, narrow_or_unaligned_register_access_is_ignored)
{
    uint8_t b[4] = {0xff, 0xff, 0xff, 0xff};
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_MAGIC_VALUE, b, 2);
    cr_assert_eq(b[0], 0);
    virtio_mmio_bus_ops.write(&t, VIRTIO_MMIO_STATUS + 1, b, 4);
    virtio_mmio_bus_ops.write(&t, VIRTIO_MMIO_STATUS, b, 1);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_STATUS), 0);
}

Test(virtio_mmio, interrupt_ack_clears_bits)
{
    hdriver_init(&h, &t, F_OK, 2);
    virtio_mmio_config_changed(&t);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_CONFIG_GENERATION), 1);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    mwr(&t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

static unsigned hooked[3];
static void hook(void *o, unsigned q)
{
    (void)o;
    hooked[q]++;
}

Test(virtio_mmio, trapped_notify_goes_through_the_hook_bounded)
{
    memset(hooked, 0, sizeof(hooked));
    t.notify_hook = hook;
    hdriver_init(&h, &t, F_OK, 2);
    mwr(&t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    mwr(&t, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
    mwr(&t, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff);
    cr_assert_eq(hooked[1], 1);
    cr_assert_eq(hooked[2], 0, "queue 2 does not exist");
    cr_assert_eq(dev.notifies[1], 0, "the device runs on the VMM thread, not here");
}

Test(virtio_mmio, shm_regions_are_absent)
{
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
}
