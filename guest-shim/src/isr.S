/*
 * isr.S - entry stubs for all 256 IDT vectors and the common trap path.
 *
 * Stub v starts at shim_isr_stubs + 16 * v (trap.c relies on it; the .org
 * makes the assembler fail if a stub ever outgrows its 16 bytes). Each stub
 * pushes a zero error code when the CPU pushes none (Intel SDM vol. 3A
 * §6.15), then its vector, so every frame has the same layout
 * (struct shim_trap_frame).
 */
#include "shim-internal.h"

#define STUB_AT(v) .org shim_isr_stubs + (v) * 16, 0xcc
#define NOERR(v) STUB_AT(v); pushq $0; pushq $(v); jmp isr_common;
#define ERR(v) STUB_AT(v); pushq $(v); jmp isr_common;

	.text
	.balign 16
	.globl shim_isr_stubs
shim_isr_stubs:
	NOERR(0) NOERR(1) NOERR(2) NOERR(3) NOERR(4) NOERR(5) NOERR(6) NOERR(7)
	ERR(8) NOERR(9) ERR(10) ERR(11) ERR(12) ERR(13) ERR(14) NOERR(15)
	NOERR(16) ERR(17) NOERR(18) NOERR(19) NOERR(20) ERR(21) NOERR(22) NOERR(23)
	NOERR(24) NOERR(25) NOERR(26) NOERR(27) NOERR(28) ERR(29) ERR(30) NOERR(31)
	NOERR(32) NOERR(33) NOERR(34) NOERR(35) NOERR(36) NOERR(37) NOERR(38) NOERR(39)
	NOERR(40) NOERR(41) NOERR(42) NOERR(43) NOERR(44) NOERR(45) NOERR(46) NOERR(47)
	NOERR(48) NOERR(49) NOERR(50) NOERR(51) NOERR(52) NOERR(53) NOERR(54) NOERR(55)
	NOERR(56) NOERR(57) NOERR(58) NOERR(59) NOERR(60) NOERR(61) NOERR(62) NOERR(63)
	NOERR(64) NOERR(65) NOERR(66) NOERR(67) NOERR(68) NOERR(69) NOERR(70) NOERR(71)
	NOERR(72) NOERR(73) NOERR(74) NOERR(75) NOERR(76) NOERR(77) NOERR(78) NOERR(79)
	NOERR(80) NOERR(81) NOERR(82) NOERR(83) NOERR(84) NOERR(85) NOERR(86) NOERR(87)
	NOERR(88) NOERR(89) NOERR(90) NOERR(91) NOERR(92) NOERR(93) NOERR(94) NOERR(95)
	NOERR(96) NOERR(97) NOERR(98) NOERR(99) NOERR(100) NOERR(101) NOERR(102) NOERR(103)
	NOERR(104) NOERR(105) NOERR(106) NOERR(107) NOERR(108) NOERR(109) NOERR(110) NOERR(111)
	NOERR(112) NOERR(113) NOERR(114) NOERR(115) NOERR(116) NOERR(117) NOERR(118) NOERR(119)
	NOERR(120) NOERR(121) NOERR(122) NOERR(123) NOERR(124) NOERR(125) NOERR(126) NOERR(127)
	NOERR(128) NOERR(129) NOERR(130) NOERR(131) NOERR(132) NOERR(133) NOERR(134) NOERR(135)
	NOERR(136) NOERR(137) NOERR(138) NOERR(139) NOERR(140) NOERR(141) NOERR(142) NOERR(143)
	NOERR(144) NOERR(145) NOERR(146) NOERR(147) NOERR(148) NOERR(149) NOERR(150) NOERR(151)
	NOERR(152) NOERR(153) NOERR(154) NOERR(155) NOERR(156) NOERR(157) NOERR(158) NOERR(159)
	NOERR(160) NOERR(161) NOERR(162) NOERR(163) NOERR(164) NOERR(165) NOERR(166) NOERR(167)
	NOERR(168) NOERR(169) NOERR(170) NOERR(171) NOERR(172) NOERR(173) NOERR(174) NOERR(175)
	NOERR(176) NOERR(177) NOERR(178) NOERR(179) NOERR(180) NOERR(181) NOERR(182) NOERR(183)
	NOERR(184) NOERR(185) NOERR(186) NOERR(187) NOERR(188) NOERR(189) NOERR(190) NOERR(191)
	NOERR(192) NOERR(193) NOERR(194) NOERR(195) NOERR(196) NOERR(197) NOERR(198) NOERR(199)
	NOERR(200) NOERR(201) NOERR(202) NOERR(203) NOERR(204) NOERR(205) NOERR(206) NOERR(207)
	NOERR(208) NOERR(209) NOERR(210) NOERR(211) NOERR(212) NOERR(213) NOERR(214) NOERR(215)
	NOERR(216) NOERR(217) NOERR(218) NOERR(219) NOERR(220) NOERR(221) NOERR(222) NOERR(223)
	NOERR(224) NOERR(225) NOERR(226) NOERR(227) NOERR(228) NOERR(229) NOERR(230) NOERR(231)
	NOERR(232) NOERR(233) NOERR(234) NOERR(235) NOERR(236) NOERR(237) NOERR(238) NOERR(239)
	NOERR(240) NOERR(241) NOERR(242) NOERR(243) NOERR(244) NOERR(245) NOERR(246) NOERR(247)
	NOERR(248) NOERR(249) NOERR(250) NOERR(251) NOERR(252) NOERR(253) NOERR(254) NOERR(255)
	STUB_AT(256)

/* Save the general registers and the SSE/x87 state (an interrupted
 * application may be using SSE), call shim_trap_dispatch(frame) with a
 * 16-byte aligned stack and DF clear, restore, return. Fatal exceptions
 * never come back from the dispatcher. */
isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	cld
	mov %rsp, %rbx
	and $-16, %rsp
	sub $512, %rsp
	fxsave (%rsp)
	mov %rbx, %rdi
	call shim_trap_dispatch
	fxrstor (%rsp)
	mov %rbx, %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp			/* vector, error code */
	iretq

	.section .note.GNU-stack, "", @progbits
