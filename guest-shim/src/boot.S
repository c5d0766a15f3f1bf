/*
 * boot.S - PVH entry, switch to long mode, and the AP real-mode trampoline.
 *
 * PVH entry state (Xen docs/misc/pvh.pandoc): 32-bit flat protected mode,
 * paging off, interrupts off, EBX = physical address of hvm_start_info.
 * The image is linked and loaded at 0x100000, identity (shim.ld).
 */
#include "shim-internal.h"

/* 32-bit protected mode -> IA-32e mode on the shim's page tables (SDM vol.
 * 3A §9.8.5): PAE in CR4, CR3, EFER.LME, then CR0.PG. The caller's far jump
 * to a 64-bit code segment completes the switch. Shared by the boot CPU and
 * the application processors' trampoline. */
.macro ENABLE_PAGING_LONG_MODE
	mov $SHIM_CR4, %eax
	mov %eax, %cr4
	mov $shim_pml4, %eax
	mov %eax, %cr3
	mov $SHIM_MSR_EFER, %ecx
	rdmsr
	or $SHIM_EFER_LME, %eax
	wrmsr
	mov $SHIM_CR0, %eax
	mov %eax, %cr0
.endm

/* ELF note: name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18), 4-byte entry. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long 18
	.asciz "Xen"
	.long _start

/* ---- 32-bit boot CPU entry ---- */
	.section .text.boot, "ax", @progbits
	.code32
	.globl _start
_start:
	rdtsc				/* first instruction: boot TSC in EDX:EAX */
	mov %eax, %esi
	mov %edx, %ebp
	cli
	cld

	mov $__bss_start, %edi		/* .bss is 4-byte aligned (shim.ld) */
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx
	xor %eax, %eax
	rep stosl
	mov %esi, shim_boot_tsc
	mov %ebp, shim_boot_tsc + 4

	/* Identity map 0-4 GiB: PML4[0] -> PDPT[0..3] -> 4 PDs of 2 MiB pages;
	 * the first 2 MiB through shim_pt0 so page 0 can be unmapped later. */
	movl $shim_pdpt + (SHIM_PTE_P | SHIM_PTE_RW), shim_pml4
	mov $shim_pdpt, %edi
	mov $shim_pd + (SHIM_PTE_P | SHIM_PTE_RW), %eax
	mov $4, %ecx
1:	mov %eax, (%edi)
	add $4096, %eax
	add $8, %edi
	loop 1b

	/* The PDs and shim_pt0 are not cleared: write both halves of each entry. */
	xor %edx, %edx
	mov $shim_pd, %edi
	mov $SHIM_PDE_RAM, %eax
	mov $1536, %ecx			/* 0 - 3 GiB: RAM, write-back */
1:	mov %eax, (%edi)
	mov %edx, 4(%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b
	or $SHIM_PDE_MMIO, %eax		/* 3 - 4 GiB: the MMIO gap, uncached */
	mov $512, %ecx
1:	mov %eax, (%edi)
	mov %edx, 4(%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b

	movl $shim_pt0 + (SHIM_PTE_P | SHIM_PTE_RW), shim_pd
	mov $shim_pt0, %edi
	mov $(SHIM_PTE_P | SHIM_PTE_RW), %eax
	mov $512, %ecx
1:	mov %eax, (%edi)
	mov %edx, 4(%edi)
	add $4096, %eax
	add $8, %edi
	loop 1b

	lgdt shim_gdt_ptr
	ENABLE_PAGING_LONG_MODE
	ljmp $SHIM_SEL_CODE64, $1f

	.code64
1:	mov $SHIM_SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $shim_boot_stack + SHIM_BOOT_STACK_SIZE, %esp
	fninit
	mov %ebx, %edi			/* hvm_start_info */
	call shim_start
2:	cli
	hlt
	jmp 2b

/* ---- Application processors, after the trampoline: 64-bit ---- */
	.text
ap_long_entry:
	mov $SHIM_SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	/* Our local APIC ID picks the stack: x2APIC ID MSR or xAPIC ID register. */
	mov $SHIM_MSR_APICBASE, %ecx
	rdmsr
	test $0x400, %eax
	jz 1f
	mov $0x802, %ecx
	rdmsr
	mov %eax, %ebx
	jmp 2f
1:	and $0xfffff000, %eax
	mov 0x20(%rax), %ebx
	shr $24, %ebx
2:	cmp $SHIM_MAX_CPUS, %ebx
	jae 3f
	mov shim_ap_stacks(%rip), %rsp
	test %rsp, %rsp
	jz 3f
	lea 1(%rbx), %rax
	imul $SHIM_AP_STACK_SIZE, %rax, %rax
	add %rax, %rsp
	fninit
	mov %ebx, %edi
	call shim_ap_start
3:	cli
	hlt
	jmp 3b

/* ---- AP trampoline: copied to SHIM_AP_TRAMPOLINE_ADDR, entered in real
 * mode at CS:IP = 0x0100:0000 by the SIPI. Only offsets from its start are
 * valid until paging is on. ---- */
	.section .rodata.ap_trampoline, "a", @progbits
	.globl shim_ap_trampoline, shim_ap_trampoline_end
	.code16
shim_ap_trampoline:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lgdtl ap_gdt_ptr - shim_ap_trampoline
	mov %cr0, %eax
	or $SHIM_CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $SHIM_SEL_CODE32, $(SHIM_AP_TRAMPOLINE_ADDR + ap_pm32 - shim_ap_trampoline)

	.code32
ap_pm32:
	mov $SHIM_SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	ENABLE_PAGING_LONG_MODE
	ljmp $SHIM_SEL_CODE64, $ap_long_entry

	.balign 4
ap_gdt_ptr:
	.word shim_gdt_end - shim_gdt - 1
	.long shim_gdt
shim_ap_trampoline_end:

/* ---- GDT: flat 64-bit code, data, 32-bit code (for the trampoline) ---- */
	.section .rodata
	.balign 16
shim_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00cf9a000000ffff	/* 0x18: 32-bit code */
shim_gdt_end:
	.balign 4
	.word 0
shim_gdt_ptr:
	.word shim_gdt_end - shim_gdt - 1
	.long shim_gdt

/* PML4 and PDPT rely on .bss being cleared; the PDs, shim_pt0 and the stack
 * are written before use, so they sit in .noinit and cost no clearing. */
	.bss
	.balign 4096
	.globl shim_pml4, shim_pt0
shim_pml4:	.skip 4096
shim_pdpt:	.skip 4096

	.section .noinit, "aw", @nobits
	.balign 4096
shim_pd:	.skip 4 * 4096
shim_pt0:	.skip 4096
shim_boot_stack:
	.skip SHIM_BOOT_STACK_SIZE

	.section .note.GNU-stack, "", @progbits
