/*
 * shim.h - the whole API of flint's guest-shim.
 *
 * The guest-shim turns a freestanding C program into a PVH ELF image that
 * boots under flint (and QEMU): the application defines `int main(void)`;
 * the shim's boot stub enters long mode, installs exception handlers, copies
 * the boot information and calls main on the boot CPU with interrupts
 * disabled. Returning from main is shim_exit(main's return value).
 *
 * Environment: 64-bit long mode, ring 0, the first 4 GiB identity-mapped
 * (0xC0000000-0xFFFFFFFF uncached, page 0 unmapped so NULL faults), SSE
 * enabled, no red zone (build with the shim's compiler flags). Everything is
 * single-threaded on the boot CPU unless the application calls
 * shim_smp_start().
 *
 * Fatal exceptions: a CPU exception (vectors 0-31) on any CPU prints the
 * vector and its name, the error code, RIP, CS, RFLAGS, RSP, CR2 for #PF and
 * the general registers, then ends the VM with SHIM_EXIT_EXCEPTION(vector),
 * i.e. status 128 + vector (142 for #PF, 141 for #GP, 134 for #UD).
 */
#ifndef SHIM_H
#define SHIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flint-abi.h"

#define SHIM_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- Console: 16550 UART on COM1, polled; output is "\n", no CR. ---- */

/* Write one byte to the serial console. */
void shim_putc(char c);

/* Write the string s followed by a newline, like puts(3). */
void shim_puts(const char *s);

/* Formatted output to the console. Supports %d %i %u %x %X %o %p %s %c %%
 * with the flags '-', '0' and '#', a field width (digits or '*'), and the
 * length modifiers l, ll and z (no precision, no floating point). Output of
 * one call is not interleaved with other CPUs' output. Returns the number of
 * bytes written. */
int shim_printf(const char *fmt, ...) SHIM_PRINTF(1, 2);

/* shim_printf with a va_list. */
int shim_vprintf(const char *fmt, va_list ap);

/* Format into buf (at most size bytes including the terminating NUL, which
 * is always written when size > 0). Returns the length the full output would
 * have had, like snprintf(3). */
int shim_snprintf(char *buf, size_t size, const char *fmt, ...) SHIM_PRINTF(3, 4);

/* shim_snprintf with a va_list. */
int shim_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* ---- Console input: COM1's receiver (flint's standard input) ----
 *
 * The first call routes the UART's interrupt (GSI 4) through the IOAPIC to
 * the boot CPU and enables its "received data" interrupt; the FIFO stays
 * off (turning it on would empty the receiver). Waiting halts the CPU
 * (`sti; hlt`) until a byte's interrupt, or the 100 ms timer slice, wakes
 * it: an idle reader costs no host CPU. A serial line has no end of
 * input: after the host's stdin ends, shim_getc waits forever. Bytes are
 * raw: a terminal's Enter arrives as '\r'. Call from the boot CPU only. */

#define SHIM_GETC_FOREVER UINT64_MAX

/* Wait for the next input byte; returns it (0-255). */
int shim_getc(void);

/* As shim_getc, for at most timeout_us microseconds (0: only a byte that
 * is already there; SHIM_GETC_FOREVER: no limit). Returns the byte or
 * -SHIM_ETIMEDOUT. */
int shim_getc_timeout(uint64_t timeout_us);

/* ---- Exit ---- */

/* Status of a fatal CPU exception with vector v (0-31): 128 + v. */
#define SHIM_EXIT_EXCEPTION(v) (FLINT_EXIT_EXCEPTION_BASE + (v))

/* End the VM with `status`: a 32-bit OUT of it to FLINT_PORT_EXIT. flint
 * exits with status & 0xff; QEMU's isa-debug-exit with (status << 1) | 1. If
 * no exit device answers, the CPU stops forever (cli; hlt). Callable from any
 * CPU. */
_Noreturn void shim_exit(int status);

/* ---- Hypervisor ---- */

/* True if CPUID reports the KVM signature "KVMKVMKVM\0\0\0" (at
 * 0x40000000, or 0x40000100 behind Hyper-V leaves). */
bool shim_on_kvm(void);

/* KVM paravirtual feature bits (CPUID 0x40000001 EAX, KVM_FEATURE_*), or 0
 * when not on KVM. */
uint32_t shim_kvm_features(void);

/* ---- Time ---- */

/* Monotonic nanoseconds. With kvmclock this is KVM's guest system time
 * (nanoseconds since the VM started); with the TSC fallback it counts from
 * the shim's first instruction. Returns 0 when no time source is known (see
 * shim_time_source()). */
uint64_t shim_time_ns(void);

/* Microseconds from the shim's first instruction (TSC read at the PVH entry)
 * to now, or 0 when no time source is known. Call it first thing in main to
 * measure boot-to-main. */
uint64_t shim_us_since_entry(void);

/* Name of the time source: "kvmclock", "tsc" (frequency from CPUID leaves
 * 0x40000010, 0x15 or 0x16) or "none" (time is unavailable: the two functions
 * above return 0 and shim_delay_us spins a bounded number of iterations). */
const char *shim_time_source(void);

/* Busy-wait for at least `us` microseconds (approximately, by a bounded
 * PAUSE loop, when no time source is known). */
void shim_delay_us(uint64_t us);

/* ---- Boot arguments (the PVH command line) ---- */

/* The whole command line, never NULL ("" when the monitor passed none). */
const char *shim_cmdline(void);

/* Value of the last `key=value` word on the command line (double quotes
 * around a value are removed), "" for a bare `key`, NULL if key is absent. */
const char *shim_arg(const char *key);

/* shim_arg(key) as an integer (decimal, 0x hex or 0 octal, optional sign), or
 * def if the key is absent, malformed or out of range. */
long long shim_arg_int(const char *key, long long def);

/* Number of valid `virtio_mmio.device=<size>@<base>:<irq>[:<id>]` entries
 * (Linux syntax: size with optional K/M/G suffix, base as in C, irq > 0).
 * Malformed entries are reported on the console at boot and skipped. */
unsigned shim_virtio_mmio_count(void);

/* Entry i in command-line order. Returns 0 and fills the non-NULL out
 * pointers, or -1 if i >= shim_virtio_mmio_count(). */
int shim_virtio_mmio_get(unsigned i, uint64_t *base, uint64_t *size, unsigned *irq);

/* ---- Memory ---- */

/* Bytes of RAM (type 1) in the PVH memory map. */
uint64_t shim_ram_bytes(void);

/* Number of PVH modules the monitor passed (flint: 1 with --initrd). */
unsigned shim_module_count(void);

/* Module i's contents and size, or NULL if i >= shim_module_count(). */
const void *shim_module_get(unsigned i, size_t *size);

/* Zeroed memory from the RAM right after the image (below 4 GiB, outside
 * PVH modules); never freed. align must be a power of two (0 means 16).
 * Returns NULL when the request does not fit. Safe on any CPU. */
void *shim_alloc(size_t size, size_t align);

/* ---- Interrupts (vectors 32-255) ---- */

typedef void (*shim_irq_handler)(unsigned vector, void *arg);

/* Run fn(vector, arg) on interrupt `vector` (32-254; 255 is reserved for the
 * local APIC's spurious vector). The shim saves all registers including SSE
 * state and sends the local APIC EOI after fn returns. An interrupt without
 * a handler is reported on the console (and EOI'd) instead of crashing.
 * fn == NULL unregisters. Returns 0, or -1 for a bad vector. */
int shim_irq_register(unsigned vector, shim_irq_handler fn, void *arg);

/* Enable (sti) / disable (cli) interrupts on the calling CPU. */
void shim_irq_enable(void);
void shim_irq_disable(void);

/* Number of times a driver has halted the CPU (`sti; hlt`) waiting for a
 * device interrupt or its timeout timer. Tests compare it with the number
 * of requests to prove that waiting sleeps instead of spinning. */
uint64_t shim_halt_count(void);

/* ---- Error codes ----
 * Functions that can fail return 0 (or a count) on success and one of these
 * negated. The values are Linux's errno values. */
#define SHIM_EIO       5   /* the device answered VIRTIO_BLK_S_IOERR */
#define SHIM_EAGAIN    11  /* queue full: wait for a completion, then retry */
#define SHIM_ENOMEM    12  /* shim_alloc could not satisfy the driver */
#define SHIM_ENODEV    19  /* no such device, failed setup, or DEVICE_NEEDS_RESET */
#define SHIM_EINVAL    22  /* bad argument (length, alignment, range, buffer) */
#define SHIM_EPROTO    71  /* the device broke the virtio protocol */
#define SHIM_ENOTSUP   95  /* VIRTIO_BLK_S_UNSUPP, or feature not offered */
#define SHIM_ETIMEDOUT 110 /* no completion within the timeout */

/* ---- Block devices: virtio-blk over virtio-mmio ----
 *
 * Every virtio_mmio.device= entry whose DeviceID is 2 becomes a block
 * device, numbered in command-line order; they are probed and initialized
 * on the first call to shim_blk_count() or shim_blk_get(). The driver
 * negotiates VIRTIO_F_VERSION_1 (required), VIRTIO_F_INDIRECT_DESC,
 * VIRTIO_F_EVENT_IDX and VIRTIO_BLK_F_SIZE_MAX, SEG_MAX, RO, BLK_SIZE,
 * FLUSH, DISCARD, WRITE_ZEROES when offered, and uses one request queue.
 *
 * Waiting: the device's GSI is routed through the IOAPIC to the boot CPU;
 * a waiting driver halts (`sti; hlt`) until the interrupt or a one-shot
 * local APIC timer wakes it, so an idle guest uses no host CPU. Call the
 * block functions from the boot CPU only; they are not thread-safe.
 *
 * Errors, per request: -SHIM_EIO for VIRTIO_BLK_S_IOERR (a write to a
 * read-only device, a failed host I/O), -SHIM_ENOTSUP for
 * VIRTIO_BLK_S_UNSUPP or an operation whose feature was not offered (then
 * nothing is sent), -SHIM_EPROTO for an unknown status byte or a broken used
 * ring, -SHIM_EINVAL for a bad argument (nothing sent), -SHIM_ENODEV when
 * the device is not usable, -SHIM_ETIMEDOUT after the timeout. On
 * -SHIM_ENODEV from DEVICE_NEEDS_RESET, or on a timeout, the driver resets
 * the device at once (so it no longer touches any buffer) and fails every
 * request in flight with that code; the device stays down until
 * shim_blk_reset(). Writes to a read-only device are sent anyway: the
 * device must refuse them (virtio 1.2 §5.2.6.2). */

#define SHIM_BLK_SECTOR          512
#define SHIM_BLK_ID_LEN          20          /* VIRTIO_BLK_ID_BYTES */
#define SHIM_BLK_TIMEOUT_DEFAULT 30000000ull /* microseconds */

struct shim_blk;

struct shim_blk_info {
    uint64_t capacity;                 /* in 512-byte sectors */
    uint32_t blk_size;                 /* VIRTIO_BLK_F_BLK_SIZE, else 512 */
    uint32_t size_max;                 /* VIRTIO_BLK_F_SIZE_MAX, else 0 */
    uint32_t seg_max;                  /* VIRTIO_BLK_F_SEG_MAX, else 0 */
    uint32_t max_transfer;             /* bytes per request this driver sends (a multiple of 512) */
    uint32_t max_discard_sectors;      /* VIRTIO_BLK_F_DISCARD limits, else 0 */
    uint32_t max_write_zeroes_sectors; /* VIRTIO_BLK_F_WRITE_ZEROES limit, else 0 */
    uint16_t queue_size;               /* descriptors in the request queue */
    bool read_only;                    /* VIRTIO_BLK_F_RO */
    bool flush;                        /* VIRTIO_BLK_F_FLUSH */
    bool discard;                      /* VIRTIO_BLK_F_DISCARD */
    bool write_zeroes;                 /* VIRTIO_BLK_F_WRITE_ZEROES */
    bool indirect;                     /* VIRTIO_F_INDIRECT_DESC negotiated */
    bool event_idx;                    /* VIRTIO_F_EVENT_IDX negotiated */
    bool ready;                        /* initialized and not stopped */
    uint64_t mmio_base;                /* its virtio-mmio window */
    unsigned irq;                      /* its GSI */
    uint64_t offered;                  /* device feature bits (last negotiation) */
    uint64_t features;                 /* negotiated feature bits */
    uint64_t irqs;                     /* interrupts taken */
    uint64_t config_changes;           /* configuration change interrupts taken */
};

/* Number of block devices (probes them on the first call). */
unsigned shim_blk_count(void);

/* Block device i, or NULL if i >= shim_blk_count(). A device whose setup
 * failed is still listed (info.ready false; its requests fail with
 * -SHIM_ENODEV) so numbering follows the command line. */
struct shim_blk *shim_blk_get(unsigned i);

/* Fill *info. */
void shim_blk_info(const struct shim_blk *blk, struct shim_blk_info *info);

/* The capacity in 512-byte sectors, read again from the device if it
 * announced a configuration change (the host swapped the image: PATCH
 * /drives) since the last read. Requests are checked against it. */
uint64_t shim_blk_capacity(struct shim_blk *blk);

/* Configuration change interrupts taken so far. */
uint64_t shim_blk_config_changes(const struct shim_blk *blk);

/* Sleep (`sti; hlt`, no spinning) until the device announces a
 * configuration change after shim_blk_config_changes() returned `seen`,
 * then read the capacity again. Returns 0, -SHIM_ETIMEDOUT after
 * timeout_us microseconds, or -SHIM_ENODEV (device not ready or needing
 * reset). */
int shim_blk_wait_config_change(struct shim_blk *blk, uint64_t seen, uint64_t timeout_us);

/* Timeout for every wait on this device, in microseconds (default
 * SHIM_BLK_TIMEOUT_DEFAULT; 0 restores it). */
void shim_blk_set_timeout(struct shim_blk *blk, uint64_t us);

/* Synchronous I/O: len bytes (a multiple of 512, buf anywhere in RAM) at
 * 512-byte `sector`, split into requests of info.max_transfer bytes at
 * most. Returns 0 or a negative code (see above); after an error some of
 * the transfer may have happened. */
int shim_blk_read(struct shim_blk *blk, uint64_t sector, void *buf, size_t len);
int shim_blk_write(struct shim_blk *blk, uint64_t sector, const void *buf, size_t len);

/* VIRTIO_BLK_T_FLUSH: make completed writes stable. Returns 0 at once when
 * the device does not offer VIRTIO_BLK_F_FLUSH (then its writes are stable
 * on completion, §5.2.6.2). */
int shim_blk_flush(struct shim_blk *blk);

/* VIRTIO_BLK_T_GET_ID: the device ID string (up to 20 bytes), NUL-terminated
 * in out. Returns 0, or a negative code with out set to "". */
int shim_blk_get_id(struct shim_blk *blk, char out[SHIM_BLK_ID_LEN + 1]);

/* VIRTIO_BLK_T_DISCARD / VIRTIO_BLK_T_WRITE_ZEROES on `sectors` sectors,
 * split by the device's limits. -SHIM_ENOTSUP when the feature is not
 * offered. After write-zeroes the range reads as zeroes; `unmap` lets the
 * device deallocate it. */
int shim_blk_discard(struct shim_blk *blk, uint64_t sector, uint64_t sectors);
int shim_blk_write_zeroes(struct shim_blk *blk, uint64_t sector, uint64_t sectors, bool unmap);

/* Reset the device (Status 0, wait for it) and initialize it again: new
 * feature negotiation, cleared rings, DRIVER_OK. Requests in flight come
 * back from shim_blk_poll/shim_blk_wait with -SHIM_ENODEV. Use it after
 * -SHIM_ENODEV or -SHIM_ETIMEDOUT, or after anything else drove the
 * device. Returns 0 or a negative code. */
int shim_blk_reset(struct shim_blk *blk);

/* ---- Asynchronous block requests ----
 * The caller owns each request struct and must leave it alone (and keep it
 * alive) from shim_blk_submit until shim_blk_poll or shim_blk_wait returns
 * it. Completions come back in any order; each submitted request comes
 * back exactly once. Up to info.queue_size requests fit in flight with
 * VIRTIO_F_INDIRECT_DESC, fewer without (each then takes 2 + segments
 * descriptors). */

enum shim_blk_op {
    SHIM_BLK_READ,               /* VIRTIO_BLK_T_IN into buf */
    SHIM_BLK_WRITE,              /* VIRTIO_BLK_T_OUT from buf */
    SHIM_BLK_FLUSH,              /* VIRTIO_BLK_T_FLUSH; sector, buf, len unused */
    SHIM_BLK_GET_ID,             /* VIRTIO_BLK_T_GET_ID into buf, len 20 */
    SHIM_BLK_DISCARD,            /* VIRTIO_BLK_T_DISCARD of len bytes */
    SHIM_BLK_WRITE_ZEROES,       /* VIRTIO_BLK_T_WRITE_ZEROES of len bytes */
    SHIM_BLK_WRITE_ZEROES_UNMAP, /* the same with the unmap flag */
};

struct shim_blk_req {
    /* Set by the caller. */
    enum shim_blk_op op;
    uint64_t sector; /* in 512-byte units */
    void *buf;
    size_t len; /* bytes: a multiple of 512 up to info.max_transfer */
    void *user; /* for the caller; untouched */
    /* Set by the driver when the request comes back: 0 or a negative code. */
    int result;
    /* Private to the driver (the device reads the header and range, and
     * writes the status byte). */
    struct {
        struct shim_blk_req *next;
        struct {
            uint32_t type, reserved;
            uint64_t sector;
        } hdr;
        struct {
            uint64_t sector;
            uint32_t num_sectors, flags;
        } range;
        uint8_t status;
    } priv;
};

/* Queue one request and notify the device. Returns 0, -SHIM_EAGAIN when
 * the queue is full (take a completion first), -SHIM_EINVAL,
 * -SHIM_ENOTSUP (feature not offered), -SHIM_ENODEV (device down). On
 * error the request is not queued and will not come back. */
int shim_blk_submit(struct shim_blk *blk, struct shim_blk_req *req);

/* A completed request, or NULL if none has completed yet. Never sleeps. */
struct shim_blk_req *shim_blk_poll(struct shim_blk *blk);

/* Sleep until a request completes and set *done to it (0), or return
 * -SHIM_EINVAL when nothing is in flight. A timeout or DEVICE_NEEDS_RESET
 * completes every request in flight with -SHIM_ETIMEDOUT / -SHIM_ENODEV,
 * which then come back here as usual. */
int shim_blk_wait(struct shim_blk *blk, struct shim_blk_req **done);

/* Requests submitted and not yet returned by shim_blk_poll/shim_blk_wait. */
unsigned shim_blk_pending(const struct shim_blk *blk);

/* ---- Network devices: virtio-net over virtio-mmio ----
 *
 * Every virtio_mmio.device= entry whose DeviceID is 1 becomes a network
 * device, numbered in command-line order; they are probed and started on
 * the first call to shim_net_count() or shim_net_get(). The driver
 * negotiates VIRTIO_F_VERSION_1 (required), VIRTIO_F_EVENT_IDX and
 * VIRTIO_NET_F_MAC, MTU, STATUS and MRG_RXBUF when offered, and no
 * offloads: frames go out with their checksums complete. One receive and
 * one transmit queue.
 *
 * Frames are Ethernet frames without the virtio header or the FCS. Every
 * receive buffer is posted at start and posted again as soon as its frame
 * is taken, so the device only runs out of buffers while the application
 * does not receive; it then holds frames back (virtio-net pauses RX)
 * rather than losing them.
 *
 * Waiting: as for block devices, a waiting driver halts (`sti; hlt`)
 * until the device's interrupt or a one-shot timer; an idle guest uses no
 * host CPU. Call the net functions from the boot CPU only.
 *
 * Errors: -SHIM_EINVAL (bad argument, nothing done), -SHIM_ETIMEDOUT,
 * -SHIM_ENODEV (setup failed, or the device reported
 * DEVICE_NEEDS_RESET: the driver then resets it, and it stays down until
 * shim_net_reset()), -SHIM_EPROTO (the device broke the protocol: a used
 * entry for a buffer it did not have, a bad length or num_buffers; the
 * device is reset and stays down). */

#define SHIM_NET_FRAME_MIN       14          /* an Ethernet header */
#define SHIM_NET_FRAME_MAX       1518        /* MTU 1500 + Ethernet header + VLAN tag */
#define SHIM_NET_RX_BUF_DEFAULT  2048        /* bytes per receive buffer, header included */
#define SHIM_NET_TIMEOUT_DEFAULT 30000000ull /* microseconds, for sends */
#define SHIM_NET_FOREVER         UINT64_MAX  /* shim_net_recv without a timeout */

struct shim_net;

struct shim_net_info {
    uint8_t mac[6];         /* VIRTIO_NET_F_MAC, else made up (locally administered) */
    uint16_t mtu;           /* VIRTIO_NET_F_MTU, else 1500 */
    uint32_t frame_max;     /* largest frame shim_net_send takes: mtu + 18 */
    bool link_up;           /* VIRTIO_NET_S_LINK_UP now (true without VIRTIO_NET_F_STATUS) */
    bool mrg_rxbuf;         /* VIRTIO_NET_F_MRG_RXBUF negotiated */
    bool event_idx;         /* VIRTIO_F_EVENT_IDX negotiated */
    bool ready;             /* started and not stopped */
    uint16_t rx_queue_size; /* descriptors in the receive queue */
    uint16_t tx_queue_size; /* descriptors in the transmit queue */
    uint16_t rx_buffers;    /* receive buffers posted */
    uint32_t rx_buf_size;   /* bytes each, virtio header included */
    uint64_t mmio_base;     /* its virtio-mmio window */
    unsigned irq;           /* its GSI */
    uint64_t offered;       /* device feature bits (last negotiation) */
    uint64_t features;      /* negotiated feature bits */
    uint64_t irqs;          /* interrupts taken */
    uint64_t rx_frames;     /* frames received */
    uint64_t rx_merged;     /* ... of them spread over more than one buffer */
    uint64_t rx_empty;      /* buffers the device gave back without a frame */
    uint64_t tx_frames;     /* frames handed to the device */
};

/* Number of network devices (probes them on the first call). */
unsigned shim_net_count(void);

/* Network device i, or NULL if i >= shim_net_count(). A device whose setup
 * failed is still listed (info.ready false; calls fail with -SHIM_ENODEV)
 * so numbering follows the command line. */
struct shim_net *shim_net_get(unsigned i);

/* Fill *info (reads the link status from the device). */
void shim_net_info(const struct shim_net *net, struct shim_net_info *info);

/* Queue one frame of len bytes (SHIM_NET_FRAME_MIN to info.frame_max) for
 * transmission: it is copied, so buf is free again on return. Sleeps while
 * every transmit buffer is in flight, up to SHIM_NET_TIMEOUT_DEFAULT.
 * Returns 0 or a negative code. */
int shim_net_send(struct shim_net *net, const void *frame, size_t len);

/* Sleep until the device has taken every frame queued with shim_net_send
 * (e.g. before shim_exit, which would cut them off), up to
 * SHIM_NET_TIMEOUT_DEFAULT. Returns 0 or a negative code. */
int shim_net_flush(struct shim_net *net);

/* Take the next received frame: copy up to len bytes of it into buf and
 * return its full length (more than len: the frame was cut). Sleeps up to
 * timeout_us microseconds for one (0: do not sleep; SHIM_NET_FOREVER: no
 * limit). Returns the length, -SHIM_EAGAIN when nothing came in time with
 * timeout_us 0, -SHIM_ETIMEDOUT otherwise, or a negative code. */
int shim_net_recv(struct shim_net *net, void *buf, size_t len, uint64_t timeout_us);

/* Use receive buffers of `bytes` bytes each (virtio header included) from
 * now on: resets and restarts the device. Buffers smaller than a header
 * plus info.frame_max need VIRTIO_NET_F_MRG_RXBUF (-SHIM_ENOTSUP
 * without it); 64 to 4096 bytes. As with shim_net_reset, frames already
 * in buffers and not yet received are lost. Returns 0 or a negative code. */
int shim_net_set_rx_buffer_size(struct shim_net *net, uint32_t bytes);

/* Reset the device and start it again: new negotiation, fresh rings, every
 * receive buffer posted. Frames taken by the device but not yet handed to
 * the application are lost. Returns 0 or a negative code. */
int shim_net_reset(struct shim_net *net);

/* ---- vsock: virtio-vsock over virtio-mmio (virtio 1.2 §5.10) ----
 *
 * The first virtio_mmio.device= entry whose DeviceID is 19 is the vsock
 * device; it is probed and started on the first vsock call. Three queues:
 * receive (0), transmit (1), event (2). Stream sockets only (type 1). The
 * host is CID 2 (SHIM_VSOCK_HOST_CID); the guest's own CID comes from the
 * device's config space.
 *
 * Connections are numbered 0 .. SHIM_VSOCK_MAX_CONNS-1 (the "c" argument).
 * Each has a receive buffer of SHIM_VSOCK_BUF_BYTES, which is the
 * buf_alloc the shim advertises: the peer may never send more than the
 * application has not yet received, and the shim sends CREDIT_UPDATE as
 * the application drains it. Sends never exceed the peer's credit: a send
 * that finds no credit waits for a CREDIT_UPDATE (it asks with
 * CREDIT_REQUEST when it has waited a while).
 *
 * Timeouts are in microseconds: 0 does not wait (returns -SHIM_EAGAIN if
 * nothing could be done), SHIM_VSOCK_FOREVER waits without limit. Waiting
 * halts the CPU until an interrupt or a timer, as the other drivers do.
 * Call the vsock functions from the boot CPU only.
 *
 * Errors: -SHIM_EINVAL (bad argument or connection number), -SHIM_ENODEV
 * (no vsock device, setup failed, or DEVICE_NEEDS_RESET), -SHIM_EAGAIN,
 * -SHIM_ETIMEDOUT, -SHIM_ECONNREFUSED (the peer answered a request with
 * RST), -SHIM_ECONNRESET (the peer reset an established connection, or the
 * device reported a transport reset event), -SHIM_EPIPE (send after the
 * peer shut down its receive side or after a local SHUT_WR), -SHIM_EBUSY
 * (no free connection slot, or the port is already listened on),
 * -SHIM_EPROTO (the device broke the ring protocol). After -SHIM_ENODEV
 * or -SHIM_EPROTO the device is reset and stays down; its connections
 * read as reset.
 *
 * Packets are checked, never trusted: a wrong dst_cid or type, a len
 * beyond the buffer or an unknown op is dropped and counted in
 * bad_packets; a packet for no connection is answered with RST; payload
 * beyond the credit the shim granted is dropped and resets the connection;
 * a fwd_cnt ahead of what was sent gives no credit. Once the peer has
 * shut down both directions and every byte is received, the shim ends
 * the connection with RST.
 *
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (§5.10.6.6; what a guest restored
 * from a snapshot gets first, its host ends being gone) ends every
 * connection without an RST: each reads as reset (conn_info's `reset`;
 * recv gives -SHIM_ECONNRESET once its bytes are taken, or 0 if the peer
 * had shut down its sending side before; then close it);
 * listeners stay; the guest CID is read again; shim_vsock_info counts it
 * in transport_resets and shim_vsock_wait returns for it. An application
 * that waits for it reconnects with shim_vsock_connect as usual. */

#define SHIM_ECONNREFUSED 111
#define SHIM_ECONNRESET   104
#define SHIM_EPIPE        32
#define SHIM_EBUSY        16

#define SHIM_VSOCK_HOST_CID   2
#define SHIM_VSOCK_MAX_CONNS  64
#define SHIM_VSOCK_MAX_LISTEN 8
#define SHIM_VSOCK_BUF_BYTES  (64u << 10)
#define SHIM_VSOCK_FOREVER    UINT64_MAX
#define SHIM_VSOCK_SHUT_RD    1 /* = VIRTIO_VSOCK_SHUTDOWN_RCV */
#define SHIM_VSOCK_SHUT_WR    2 /* = VIRTIO_VSOCK_SHUTDOWN_SEND */

struct shim_vsock_info {
    bool ready;         /* device started and not stopped */
    uint64_t guest_cid; /* from config space */
    uint64_t mmio_base;
    unsigned irq;
    uint64_t features; /* negotiated */
    uint64_t irqs;     /* interrupts taken */
    uint64_t rx_packets, tx_packets;
    uint64_t rx_bytes, tx_bytes; /* payload bytes */
    uint64_t credit_updates_sent, credit_requests_sent;
    uint64_t resets_received;  /* RST packets */
    uint64_t transport_resets; /* event queue: VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
    uint64_t bad_packets;      /* dropped: wrong CID, type, length, unknown op */
    unsigned conns_open;
};

/* Probe and start the device if needed; fill *info. Returns 0 or
 * -SHIM_ENODEV (info still filled, ready false). */
int shim_vsock_info(struct shim_vsock_info *info);

/* Accept connection requests to `port` from now on (a REQUEST to a port
 * nobody listens on gets RST). Up to SHIM_VSOCK_MAX_LISTEN ports. Requests
 * are queued (backlog 32) until shim_vsock_accept takes them; the RESPONSE
 * is sent when the request arrives. Returns 0 or a negative code. */
int shim_vsock_listen(uint32_t port);

/* Take the next connection made to a listened port. Returns its number,
 * -SHIM_EINVAL if port is not listened on, -SHIM_EAGAIN / -SHIM_ETIMEDOUT. */
int shim_vsock_accept(uint32_t port, uint64_t timeout_us);

/* Connect to the host (CID 2) port `port` from a local port the shim picks
 * (from 1024 up). Waits for the answer: timeout_us 0 is -SHIM_EINVAL. On
 * a timeout the request is cancelled with RST. Returns the connection
 * number, -SHIM_ECONNREFUSED, -SHIM_ETIMEDOUT, -SHIM_EBUSY (no free
 * slot), ... */
int shim_vsock_connect(uint32_t port, uint64_t timeout_us);

/* Send up to len bytes: as many as credit and the transmit queue allow,
 * waiting (up to the timeout) only while none can go. Returns bytes sent
 * (> 0), or a negative code. The bytes are copied: buf is free on return. */
long shim_vsock_send(int c, const void *buf, size_t len, uint64_t timeout_us);

/* Receive up to len bytes. Returns > 0 bytes, 0 at end of stream (the peer
 * sent SHUTDOWN with SEND and everything before it has been received; an
 * RST after that SHUTDOWN still reads as end of stream), or a negative
 * code (-SHIM_ECONNRESET once the bytes received before an RST are
 * taken). */
long shim_vsock_recv(int c, void *buf, size_t len, uint64_t timeout_us);

/* Sleep until every packet sent on c (data and control, e.g. a SHUTDOWN)
 * has been taken by the device. */
int shim_vsock_flush(int c, uint64_t timeout_us);

/* Shut down one or both directions (SHIM_VSOCK_SHUT_*): sends SHUTDOWN. */
int shim_vsock_shutdown(int c, unsigned how);

/* Close: shut down both directions and free the slot once the peer has
 * answered with RST (or after 2 s, then RST is sent; at once when there is
 * no clock). Does not wait: the rest happens in later vsock calls. Bytes
 * not yet received are dropped. The number may be reused afterwards.
 * Returns 0 or -SHIM_EINVAL. */
int shim_vsock_close(int c);

/* Connection state for polling loops. */
struct shim_vsock_conn_info {
    bool open; /* slot in use */
    bool established;
    bool peer_shut_rd; /* peer will receive no more */
    bool peer_shut_wr; /* peer will send no more (recv returns 0 once drained) */
    bool reset;        /* peer sent RST, transport reset, or a protocol error */
    uint32_t local_port, peer_port;
    uint64_t peer_cid;
    uint32_t rx_available; /* bytes shim_vsock_recv would return now */
    uint32_t tx_credit;    /* bytes shim_vsock_send could send now */
};
int shim_vsock_conn_info(int c, struct shim_vsock_conn_info *info);

/* Sleep until a vsock packet or event arrives or the timeout passes (for a
 * loop serving many connections with timeout-0 calls). Any packet the
 * driver took since this function last returned counts, even one taken
 * inside another call: then it returns at once, so a loop that serves
 * every connection between two waits misses nothing. A transmit buffer
 * coming free after a send found none also counts. Returns 0 when
 * something arrived, -SHIM_ETIMEDOUT otherwise (also for timeout 0), or
 * -SHIM_ENODEV. */
int shim_vsock_wait(uint64_t timeout_us);

/* ---- SMP ---- */

#define SHIM_MAX_CPUS 32

typedef void (*shim_ap_fn)(unsigned cpu, void *arg);

/* Start every application processor with a broadcast INIT-SIPI-SIPI through
 * the local APIC. Each AP enters long mode on the shim's page tables with
 * its own stack, counts itself in shim_cpu_count_started(), runs fn(cpu,
 * arg) if fn is not NULL, then halts (cli; hlt) for good. Returns at once (0)
 * without waiting for the APs; -1 if called twice, or if the trampoline page
 * (0x1000) is not RAM or the stacks cannot be allocated. APs with APIC ID >=
 * SHIM_MAX_CPUS stay halted and uncounted. */
int shim_smp_start(shim_ap_fn fn, void *arg);

/* CPUs that have come up so far, the boot CPU included. */
unsigned shim_cpu_count_started(void);

/* Index of the calling CPU: its local APIC ID (flint: the vCPU index). */
unsigned shim_cpu_index(void);

/* ---- C library subset (the compiler may emit calls to the mem* ones) ---- */

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif /* SHIM_H */
