/* Unit tests: split virtqueue walking, with well-formed and hostile rings. */
#include <criterion/criterion.h>

#include "virtio_harness.h"

#include <errno.h>
#include <flint-abi.h>

static struct hdrv h;
static struct virtq vq;
static struct iovec iov[32];
static struct virtq_chain c;

static void setup(void)
{
    hdrv_init(&h, H_QSIZE);
    cr_assert_eq(hqueue(&h, &vq, true, false), 0);
}

static void teardown(void)
{
    guest_mem_destroy(&h.mem);
}

TestSuite(virtq, .init = setup, .fini = teardown);

Test(virtq, empty_ring_yields_nothing)
{
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 0);
    cr_assert_not(virtq_has_avail(&vq));
}

Test(virtq, single_descriptor)
{
    hset(&h, 3, H_BUF, 100, 0, 0);
    hoffer(&h, 3);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1);
    cr_assert_eq(c.head, 3);
    cr_assert_eq(c.nread, 1);
    cr_assert_eq(c.nwrite, 0);
    cr_assert_eq(c.read_bytes, 100);
    cr_assert_eq(iov[0].iov_base, hbuf(&h, 0, 100));
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 0);
}

Test(virtq, multi_descriptor_read_then_write)
{
    hset(&h, 0, H_BUF, 16, VIRTQ_DESC_F_NEXT, 5);
    hset(&h, 5, H_BUF + 0x1000, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 9);
    hset(&h, 9, H_BUF + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1);
    cr_assert_eq(c.nread, 1);
    cr_assert_eq(c.nwrite, 2);
    cr_assert_eq(c.write_bytes, 4097);
    cr_assert_eq(iov[2].iov_len, 1);
}

Test(virtq, indirect_table)
{
    struct virtq_desc *t = guest_mem_slice(&h.mem, H_IND, 3 * 16);
    t[0] = (struct virtq_desc){H_BUF, 16, VIRTQ_DESC_F_NEXT, 1};
    t[1] = (struct virtq_desc){H_BUF + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2};
    t[2] = (struct virtq_desc){H_BUF + 0x400, 1, VIRTQ_DESC_F_WRITE, 0};
    hset(&h, 7, H_IND, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    hoffer(&h, 7);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1);
    cr_assert_eq(c.head, 7);
    cr_assert_eq(c.nread + c.nwrite, 3);
    cr_assert_eq(c.write_bytes, 513);
}

Test(virtq, wrapping_indices)
{
    /* Start both sides near 65535 so avail and used indices wrap. */
    vq.last_avail = 65530;
    h.avail_idx = 65530;
    vq.used_idx = 65530;
    for (int i = 0; i < 12; i++) {
        hset(&h, (unsigned)i, H_BUF + (uint64_t)i * 64, 64, 0, 0);
        hoffer(&h, (uint16_t)i);
    }
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1, "pop %d", i);
        cr_assert_eq(c.head, i);
        virtq_push(&vq, c.head, 0);
    }
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 0);
    cr_assert_eq(hused_idx(&h), (uint16_t)(65530 + 12));
    uint32_t id, len;
    hused_elem(&h, (uint16_t)(65530 + 11), &id, &len);
    cr_assert_eq(id, 11);
}

Test(virtq, chain_of_queue_size_is_allowed)
{
    for (unsigned i = 0; i < H_QSIZE; i++)
        hset(&h, i, H_BUF + i * 8ull, 8, i + 1 < H_QSIZE ? VIRTQ_DESC_F_NEXT : 0,
             (uint16_t)(i + 1));
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1);
    cr_assert_eq(c.nread, H_QSIZE);
}

Test(virtq, descriptor_loop_is_caught)
{
    hset(&h, 0, H_BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    hset(&h, 1, H_BUF, 8, VIRTQ_DESC_F_NEXT, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -ELOOP);
    hset(&h, 0, H_BUF, 8, VIRTQ_DESC_F_NEXT, 0); /* points at itself */
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -ELOOP);
}

Test(virtq, loop_inside_indirect_table_is_caught)
{
    struct virtq_desc *t = guest_mem_slice(&h.mem, H_IND, 2 * 16);
    t[0] = (struct virtq_desc){H_BUF, 8, VIRTQ_DESC_F_NEXT, 1};
    t[1] = (struct virtq_desc){H_BUF, 8, VIRTQ_DESC_F_NEXT, 0};
    hset(&h, 0, H_IND, 32, VIRTQ_DESC_F_INDIRECT, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -ELOOP);
}

Test(virtq, buffer_beyond_ram)
{
    hset(&h, 0, 4 * MIB - 8, 16, 0, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EFAULT);
}

Test(virtq, buffer_in_mmio_gap_or_wrapping)
{
    hset(&h, 0, FLINT_MMIO_GAP_START, 4, 0, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EFAULT);
    hset(&h, 0, UINT64_MAX - 3, 16, 0, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EFAULT, "addr + len overflows");
}

Test(virtq, zero_length_descriptor_is_kept_in_bounds)
{
    hset(&h, 0, H_BUF, 0, 0, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1);
    cr_assert_eq(c.read_bytes, 0);
    hset(&h, 1, 1ull << 50, 0, 0, 0); /* even empty, the address must be RAM */
    hoffer(&h, 1);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EFAULT);
}

Test(virtq, nested_indirect_is_rejected)
{
    struct virtq_desc *t = guest_mem_slice(&h.mem, H_IND, 16);
    t[0] = (struct virtq_desc){H_IND, 16, VIRTQ_DESC_F_INDIRECT, 0};
    hset(&h, 0, H_IND, 16, VIRTQ_DESC_F_INDIRECT, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO);
}

Test(virtq, bad_indirect_tables_are_rejected)
{
    hset(&h, 0, H_IND, 24, VIRTQ_DESC_F_INDIRECT, 0); /* not a multiple of 16 */
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO);
    hset(&h, 0, H_IND, 0, VIRTQ_DESC_F_INDIRECT, 0); /* empty */
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO);
    hset(&h, 0, H_IND, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO, "INDIRECT with NEXT");
    hset(&h, 0, 4 * MIB - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EFAULT, "table beyond RAM");
    hset(&h, 0, H_IND, 16 * (VIRTQ_MAX_SIZE + 1), VIRTQ_DESC_F_INDIRECT, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO, "table too long");
}

Test(virtq, indirect_without_negotiation_is_rejected)
{
    cr_assert_eq(hqueue(&h, &vq, false, false), 0);
    hset(&h, 0, H_IND, 16, VIRTQ_DESC_F_INDIRECT, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO);
}

Test(virtq, avail_index_jump_is_rejected)
{
    uint16_t *a = havail(&h);
    a[1] = H_QSIZE + 1; /* more entries than slots */
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO);
    a[1] = H_QSIZE; /* exactly a full ring is fine */
    for (unsigned i = 0; i < H_QSIZE; i++) {
        a[2 + i] = (uint16_t)i;
        hset(&h, i, H_BUF, 1, 0, 0);
    }
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1);
}

Test(virtq, head_and_next_out_of_range_are_rejected)
{
    hoffer(&h, H_QSIZE); /* head index == queue size */
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO);
    cr_assert_eq(hqueue(&h, &vq, true, false), 0);
    h.avail_idx = 0;
    hset(&h, 0, H_BUF, 8, VIRTQ_DESC_F_NEXT, 999);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO);
}

Test(virtq, readable_after_writable_is_rejected)
{
    hset(&h, 0, H_BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    hset(&h, 1, H_BUF, 8, 0, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), -EPROTO);
}

Test(virtq, more_buffers_than_the_caller_holds)
{
    for (unsigned i = 0; i < 5; i++)
        hset(&h, i, H_BUF, 8, i < 4 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 4, &c), -E2BIG);
}

Test(virtq, activation_checks_size_alignment_and_ram)
{
    struct virtq q = vq;
    q.num = 3;
    cr_assert_eq(virtq_activate(&q, &h.mem), -EINVAL, "not a power of two");
    q.num = 512;
    cr_assert_eq(virtq_activate(&q, &h.mem), -EINVAL, "above the maximum");
    q.num = 0;
    cr_assert_eq(virtq_activate(&q, &h.mem), -EINVAL);
    q = vq;
    q.desc_gpa = H_DESC + 8;
    cr_assert_eq(virtq_activate(&q, &h.mem), -EINVAL, "misaligned");
    q = vq;
    q.used_gpa = 4 * MIB - 16;
    cr_assert_eq(virtq_activate(&q, &h.mem), -EINVAL, "used ring beyond RAM");
    q = vq;
    q.avail_gpa = FLINT_MMIO_GAP_START;
    cr_assert_eq(virtq_activate(&q, &h.mem), -EINVAL, "avail ring in the MMIO gap");
}

Test(virtq, interrupt_suppression_without_event_idx)
{
    hset(&h, 0, H_BUF, 8, 0, 0);
    hoffer(&h, 0);
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1);
    virtq_push(&vq, 0, 8);
    cr_assert(virtq_needs_interrupt(&vq));
    havail(&h)[0] = 1; /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    virtq_push(&vq, 0, 8);
    cr_assert_not(virtq_needs_interrupt(&vq));
}

Test(virtq, event_idx_interrupts_only_when_used_event_is_crossed)
{
    uint16_t *used_event;
    cr_assert_eq(hqueue(&h, &vq, true, true), 0);
    used_event = &havail(&h)[2 + H_QSIZE];
    *used_event = 2; /* interrupt when entry 2 is used */
    virtq_push(&vq, 0, 1);
    cr_assert_not(virtq_needs_interrupt(&vq), "used 0");
    virtq_push(&vq, 0, 1);
    cr_assert_not(virtq_needs_interrupt(&vq), "used 1");
    virtq_push(&vq, 0, 1);
    cr_assert(virtq_needs_interrupt(&vq), "used 2 crosses used_event");
    virtq_push(&vq, 0, 1);
    cr_assert_not(virtq_needs_interrupt(&vq), "past it");
}

Test(virtq, enable_notify_publishes_avail_event)
{
    cr_assert_eq(hqueue(&h, &vq, true, true), 0);
    hset(&h, 0, H_BUF, 8, 0, 0);
    hoffer(&h, 0);
    cr_assert(virtq_enable_notify(&vq), "an entry is pending");
    cr_assert_eq(virtq_pop(&vq, &h.mem, iov, 32, &c), 1);
    cr_assert_not(virtq_enable_notify(&vq));
    uint16_t *avail_event = guest_mem_slice(&h.mem, H_USED + 4 + 8 * H_QSIZE, 2);
    cr_assert_eq(*avail_event, 1);
}

Test(virtq, iov_copy_spans_segments)
{
    uint8_t a[3] = {1, 2, 3}, b[4] = {4, 5, 6, 7}, out[5];
    struct iovec v[2] = {{a, 3}, {b, 4}};
    cr_assert_eq(iov_copy_from(v, 2, 2, out, 5), 5);
    cr_assert_eq(out[0], 3);
    cr_assert_eq(out[4], 7);
    cr_assert_eq(iov_copy_from(v, 2, 6, out, 5), 1, "only what exists");
    uint8_t in[2] = {9, 9};
    cr_assert_eq(iov_copy_to(v, 2, 2, in, 2), 2);
    cr_assert_eq(a[2], 9);
    cr_assert_eq(b[0], 9);
}
