/*
 * virtio_mmio.c - the virtio-mmio transport, version 2 (virtio 1.2 §4.2).
 */
#include "virtio.h"

/* Bounded polls: a device that never finishes a reset is an error. */
#define RESET_POLLS        100000
#define RESET_POLL_US      10
#define CONFIG_GENERATIONS 100

static uint32_t mmio_read(const struct virtio_dev *dev, unsigned off)
{
    return *(volatile uint32_t *)(dev->base + off);
}

static void mmio_write(const struct virtio_dev *dev, unsigned off, uint32_t v)
{
    *(volatile uint32_t *)(dev->base + off) = v;
}

int virtio_mmio_probe(unsigned entry, struct virtio_dev *dev)
{
    uint64_t base, size;
    unsigned irq;

    if (shim_virtio_mmio_get(entry, &base, &size, &irq))
        return -SHIM_ENODEV;
    /* The registers end at ConfigGeneration; the window must hold them and
     * lie in the identity-mapped 4 GiB. */
    if (size < VIRTIO_MMIO_CONFIG || base >= FLINT_MMIO_GAP_END - size) {
        shim_printf("shim: virtio-mmio %u at %#llx size %#llx is out of reach\n", entry,
                    (unsigned long long)base, (unsigned long long)size);
        return -SHIM_ENODEV;
    }
    *dev = (struct virtio_dev){.base = (uintptr_t)base, .gsi = irq};
    uint32_t magic = mmio_read(dev, VIRTIO_MMIO_MAGIC_VALUE);
    uint32_t version = mmio_read(dev, VIRTIO_MMIO_VERSION);
    if (magic != VIRTIO_MMIO_MAGIC || version != VIRTIO_MMIO_VERSION_2) {
        shim_printf("shim: virtio-mmio %u at %#llx: magic %#x version %u, ignored\n", entry,
                    (unsigned long long)base, magic, version);
        return -SHIM_ENODEV;
    }
    /* DeviceID 0 is an empty slot: ignore it silently, touch nothing else. */
    dev->device_id = mmio_read(dev, VIRTIO_MMIO_DEVICE_ID);
    if (dev->device_id == 0)
        return -SHIM_ENODEV;
    dev->vendor_id = mmio_read(dev, VIRTIO_MMIO_VENDOR_ID);
    return 0;
}

int virtio_reset(struct virtio_dev *dev)
{
    mmio_write(dev, VIRTIO_MMIO_STATUS, 0);
    /* §2.4.2 (device reset): the driver waits for Status to read 0. */
    for (unsigned i = 0; mmio_read(dev, VIRTIO_MMIO_STATUS) != 0; i++) {
        if (i == RESET_POLLS)
            return -SHIM_ETIMEDOUT;
        shim_delay_us(RESET_POLL_US);
    }
    dev->status = 0;
    dev->needs_reset = false;
    dev->isr = 0;
    return 0;
}

/* Write back only the driver's own bits: DEVICE_NEEDS_RESET is the
 * device's to set (§2.1). */
static void status_set(struct virtio_dev *dev, uint32_t bits)
{
    dev->status |= bits;
    mmio_write(dev, VIRTIO_MMIO_STATUS, dev->status);
}

void virtio_fail(struct virtio_dev *dev)
{
    status_set(dev, VIRTIO_STATUS_FAILED);
}

static uint64_t features_read(struct virtio_dev *dev)
{
    uint64_t f = 0;

    for (unsigned sel = 0; sel < 2; sel++) {
        mmio_write(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
        f |= (uint64_t)mmio_read(dev, VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
    }
    return f;
}

static void features_write(struct virtio_dev *dev, uint64_t f)
{
    for (unsigned sel = 0; sel < 2; sel++) {
        mmio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
        mmio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> (32 * sel)));
    }
}

int virtio_negotiate(struct virtio_dev *dev, uint64_t wanted)
{
    int ret = virtio_reset(dev);

    if (ret)
        return ret;
    status_set(dev, VIRTIO_STATUS_ACKNOWLEDGE);
    status_set(dev, VIRTIO_STATUS_DRIVER);
    dev->offered = features_read(dev);
    /* §6.1: a driver MUST NOT accept a device without VERSION_1 (that is a
     * legacy device, and version-2 MMIO has no legacy mode). */
    if (!(dev->offered & VIRTIO_FEATURE(VIRTIO_F_VERSION_1))) {
        virtio_fail(dev);
        return -SHIM_ENOTSUP;
    }
    dev->features = dev->offered & (wanted | VIRTIO_FEATURE(VIRTIO_F_VERSION_1));
    features_write(dev, dev->features);
    status_set(dev, VIRTIO_STATUS_FEATURES_OK);
    /* §3.1.1 step 6: the device clears FEATURES_OK if it rejects the set. */
    if (!(mmio_read(dev, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_fail(dev);
        return -SHIM_EIO;
    }
    return 0;
}

int virtio_check(struct virtio_dev *dev)
{
    uint32_t s = mmio_read(dev, VIRTIO_MMIO_STATUS);

    if ((s & (VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED)) ||
        !(s & VIRTIO_STATUS_DRIVER_OK)) {
        dev->needs_reset = true;
        return -SHIM_ENODEV;
    }
    return 0;
}

/* §4.2.3.4: read InterruptStatus, acknowledge what was seen. The waiter
 * checks its rings after this returns, so acknowledging first loses
 * nothing. A configuration change (or an interrupt with nothing pending,
 * e.g. one that was latched while someone else drove the device) is when
 * DEVICE_NEEDS_RESET shows up (§2.1.2: the device notifies a config change
 * after setting it). */
static void virtio_irq(unsigned vector, void *arg)
{
    struct virtio_dev *dev = arg;
    uint32_t isr = mmio_read(dev, VIRTIO_MMIO_INTERRUPT_STATUS);
    uint32_t known = isr & (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);

    (void)vector;
    if (known)
        mmio_write(dev, VIRTIO_MMIO_INTERRUPT_ACK, known);
    dev->isr |= known;
    dev->irqs++;
    if (!known || (known & VIRTIO_MMIO_INT_CONFIG)) {
        uint32_t s = mmio_read(dev, VIRTIO_MMIO_STATUS);
        if (s & (VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED))
            dev->needs_reset = true;
        else if (known & VIRTIO_MMIO_INT_CONFIG)
            dev->config_changes++; /* §2.5.1: the driver reads the config again */
    }
}

static int irq_setup(struct virtio_dev *dev)
{
    if (dev->vector)
        return 0;
    int vector = irq_vector_alloc();
    if (vector < 0)
        return vector;
    shim_irq_register((unsigned)vector, virtio_irq, dev);
    lapic_enable();
    int ret = ioapic_route(dev->gsi, (unsigned)vector, lapic_id());
    if (ret) {
        shim_printf("shim: virtio-mmio at %#llx: cannot route GSI %u\n",
                    (unsigned long long)dev->base, dev->gsi);
        shim_irq_register((unsigned)vector, NULL, NULL);
        return ret;
    }
    dev->vector = vector;
    return 0;
}

int virtio_driver_ok(struct virtio_dev *dev)
{
    int ret = irq_setup(dev);

    if (ret)
        return ret;
    status_set(dev, VIRTIO_STATUS_DRIVER_OK);
    return virtio_check(dev);
}

uint8_t virtio_config_read8(struct virtio_dev *dev, unsigned off)
{
    return *(volatile uint8_t *)(dev->base + VIRTIO_MMIO_CONFIG + off);
}

uint16_t virtio_config_read16(struct virtio_dev *dev, unsigned off)
{
    return *(volatile uint16_t *)(dev->base + VIRTIO_MMIO_CONFIG + off);
}

uint32_t virtio_config_read32(struct virtio_dev *dev, unsigned off)
{
    return *(volatile uint32_t *)(dev->base + VIRTIO_MMIO_CONFIG + off);
}

uint64_t virtio_config_read64(struct virtio_dev *dev, unsigned off)
{
    uint64_t lo = virtio_config_read32(dev, off);

    return lo | (uint64_t)virtio_config_read32(dev, off + 4) << 32;
}

uint32_t virtio_config_begin(struct virtio_dev *dev)
{
    return mmio_read(dev, VIRTIO_MMIO_CONFIG_GENERATION);
}

bool virtio_config_retry(struct virtio_dev *dev, uint32_t *generation, unsigned *tries)
{
    uint32_t now = mmio_read(dev, VIRTIO_MMIO_CONFIG_GENERATION);

    if (now == *generation || ++*tries >= CONFIG_GENERATIONS)
        return false;
    *generation = now;
    return true;
}

uint16_t virtio_queue_max(struct virtio_dev *dev, uint16_t index)
{
    mmio_write(dev, VIRTIO_MMIO_QUEUE_SEL, index);
    if (mmio_read(dev, VIRTIO_MMIO_QUEUE_READY))
        return 0;
    uint32_t max = mmio_read(dev, VIRTIO_MMIO_QUEUE_NUM_MAX);
    return max > VIRTQ_SIZE_MAX ? VIRTQ_SIZE_MAX : (uint16_t)max;
}

static void mmio_write64(struct virtio_dev *dev, unsigned off_low, const void *p)
{
    uint64_t addr = (uintptr_t)p;

    mmio_write(dev, off_low, (uint32_t)addr);
    mmio_write(dev, off_low + 4, (uint32_t)(addr >> 32));
}

int virtio_queue_enable(struct virtio_dev *dev, uint16_t index, uint16_t size, const void *desc,
                        const void *driver, const void *device)
{
    mmio_write(dev, VIRTIO_MMIO_QUEUE_SEL, index);
    mmio_write(dev, VIRTIO_MMIO_QUEUE_NUM, size);
    mmio_write64(dev, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
    mmio_write64(dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, driver);
    mmio_write64(dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, device);
    /* The rings are written before the device may look at them. */
    virtio_mb();
    mmio_write(dev, VIRTIO_MMIO_QUEUE_READY, 1);
    return mmio_read(dev, VIRTIO_MMIO_QUEUE_READY) == 1 ? 0 : -SHIM_ENODEV;
}

void virtio_notify(struct virtio_dev *dev, uint16_t index)
{
    mmio_write(dev, VIRTIO_MMIO_QUEUE_NOTIFY, index);
}

struct wait_ctx {
    struct virtio_dev *dev;
    bool (*done)(void *arg);
    void *arg;
};

static bool wait_done(void *p)
{
    struct wait_ctx *w = p;

    return w->dev->needs_reset || w->done(w->arg);
}

int virtio_wait(struct virtio_dev *dev, bool (*done)(void *arg), void *arg, uint64_t timeout_ns)
{
    struct wait_ctx w = {dev, done, arg};
    int ret = wait_until(wait_done, &w, timeout_ns);

    if (ret == 0 && dev->needs_reset)
        return -SHIM_ENODEV;
    if (ret == -SHIM_ETIMEDOUT && virtio_check(dev))
        return -SHIM_ENODEV;
    return ret;
}
