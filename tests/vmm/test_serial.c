/* The 16550A UART: registers, interrupts and output as Linux's 8250 driver relies on them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmm/devices.h"

#define BASE 0x3f8
#define GSI 4

enum { RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR };

struct fake_irq {
	int level;
	unsigned raises;
};

static void fake_set_level(void *opaque, unsigned gsi, int level)
{
	struct fake_irq *f = opaque;

	cr_assert_eq(gsi, GSI);
	if (level && !f->level)
		f->raises++;
	f->level = level;
}

static struct bus pio;
static struct fake_irq irq_state;
static struct irq_chip chip = { .set_level = fake_set_level, .opaque = &irq_state };
static struct serial *uart;
static int pipe_fd[2];

static void setup(void)
{
	memset(&irq_state, 0, sizeof(irq_state));
	cr_assert_eq(bus_init(&pio), 0);
	cr_assert_eq(pipe2(pipe_fd, O_CLOEXEC), 0);
	cr_assert_eq(fcntl(pipe_fd[0], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(serial_create(&uart, &pio, BASE, &chip, GSI, pipe_fd[1]), 0);
}

static void teardown(void)
{
	serial_destroy(uart);
	if (pipe_fd[0] >= 0)
		close(pipe_fd[0]);
	close(pipe_fd[1]);
	bus_destroy(&pio);
}

TestSuite(serial, .init = setup, .fini = teardown);

static uint8_t in8(unsigned reg)
{
	uint8_t v = 0;

	cr_assert(bus_access(&pio, BASE + reg, false, &v, 1));
	return v;
}

static void out8(unsigned reg, uint8_t v)
{
	cr_assert(bus_access(&pio, BASE + reg, true, &v, 1));
}

static size_t drain_pipe(char *buf, size_t cap)
{
	ssize_t n = read(pipe_fd[0], buf, cap);

	return n < 0 ? 0 : (size_t)n;
}

Test(serial, thr_bytes_reach_the_output_fd)
{
	char buf[16];

	for (const char *p = "hi\n"; *p; p++)
		out8(RBR, (uint8_t)*p);
	cr_assert_eq(drain_pipe(buf, sizeof(buf)), 3);
	cr_assert_arr_eq(buf, "hi\n", 3);
}

Test(serial, lsr_shows_transmitter_empty_and_data_ready)
{
	cr_assert_eq(in8(LSR), 0x60); /* THRE | TEMT, nothing received */
	out8(RBR, 'x');
	cr_assert_eq(in8(LSR), 0x60, "transmission is immediate");
	serial_input(uart, "a", 1);
	cr_assert_eq(in8(LSR), 0x61);
	cr_assert_eq(in8(RBR), 'a');
	cr_assert_eq(in8(LSR), 0x60);
}

Test(serial, dlab_exposes_the_divisor_latch)
{
	char buf[4];

	out8(LCR, 0x83);
	out8(RBR, 0x01); /* DLL, not THR */
	out8(IER, 0x02); /* DLM, not IER */
	cr_assert_eq(in8(RBR), 0x01);
	cr_assert_eq(in8(IER), 0x02);
	out8(LCR, 0x03);
	cr_assert_eq(in8(LCR), 0x03);
	cr_assert_eq(in8(IER), 0x00, "IER untouched by the DLM write");
	cr_assert_eq(drain_pipe(buf, sizeof(buf)), 0, "a DLL write transmits nothing");
	out8(LCR, 0x80);
	cr_assert_eq(in8(RBR), 0x01);
	cr_assert_eq(in8(IER), 0x02);
}

Test(serial, scratch_register_holds_what_was_written)
{
	out8(SCR, 0x5a);
	cr_assert_eq(in8(SCR), 0x5a);
	out8(SCR, 0xa5);
	cr_assert_eq(in8(SCR), 0xa5);
}

/* The sequence of drivers/tty/serial/8250/8250_port.c autoconfig() and autoconfig_16550a(). */
Test(serial, linux_autoconfig_detects_a_16550a)
{
	uint8_t save_mcr, status1, status2;

	/* Existence: IER keeps exactly its low four bits. */
	out8(IER, 0);
	cr_assert_eq(in8(IER) & 0x0f, 0);
	out8(IER, 0x0f);
	cr_assert_eq(in8(IER) & 0x0f, 0x0f);
	out8(IER, 0);
	/* Loopback with RTS and OUT2 must read back CTS and DCD. */
	save_mcr = in8(MCR);
	out8(MCR, 0x10 | 0x0a);
	cr_assert_eq(in8(MSR) & 0xf0, 0x90);
	out8(MCR, save_mcr);
	/* FIFO probe: IIR bits 6-7 both set means 16550A. */
	out8(LCR, 0xbf);
	out8(IIR, 0); /* EFR write in conf mode B is an FCR write on a 16550A */
	out8(LCR, 0);
	out8(IIR, 0x01);
	cr_assert_eq(in8(IIR) >> 6, 3);
	/* No EFR in conf mode A or B: reg 2 reads as a non-zero IIR. */
	out8(LCR, 0x80);
	cr_assert_neq(in8(IIR), 0);
	out8(LCR, 0xbf);
	cr_assert_neq(in8(IIR), 0);
	/* Not a National SuperIO: reg 2 under LCR 0xe0 does not mirror MCR.LOOP. */
	out8(LCR, 0);
	status1 = in8(MCR);
	out8(LCR, 0xe0);
	status2 = in8(IIR);
	cr_assert_eq((status1 ^ status2) & 0x10, 0);
	out8(LCR, 0);
	out8(MCR, status1 ^ 0x10);
	out8(LCR, 0xe0);
	status2 = in8(IIR);
	out8(LCR, 0);
	out8(MCR, status1);
	cr_assert_eq((status1 ^ status2) & 0x10, 0);
	/* Not a 16750: the 64-byte FIFO bit never shows in IIR bit 5. */
	out8(IIR, 0x21);
	cr_assert_eq(in8(IIR) & 0xe0, 0xc0);
	out8(LCR, 0x80);
	out8(IIR, 0x21);
	cr_assert_eq(in8(IIR) & 0xe0, 0xc0);
	out8(IIR, 0x01);
	out8(LCR, 0);
	/* Not an XScale: IER bit 6 (UUE) does not stick. */
	out8(IER, 0x40);
	cr_assert_eq(in8(IER) & 0x40, 0);
	/* Startup's safety check: LSR is never 0xff. */
	cr_assert_neq(in8(LSR), 0xff);
}

/* size_fifo() in 8250_port.c: 256 bytes through loopback, count what the FIFO kept. */
Test(serial, linux_size_fifo_counts_16_bytes_like_a_16550a)
{
	unsigned count;

	out8(LCR, 0);
	out8(IIR, 0x07);
	out8(MCR, 0x10);
	out8(LCR, 0x80);
	out8(RBR, 0x01);
	out8(IER, 0x00);
	out8(LCR, 0x03);
	for (count = 0; count < 256; count++)
		out8(RBR, (uint8_t)count);
	for (count = 0; (in8(LSR) & 0x01) && count < 256; count++)
		cr_assert_eq(in8(RBR), count);
	cr_assert_eq(count, 16);
	out8(MCR, 0);
}

Test(serial, loopback_feeds_msr_from_mcr_and_thr_into_rbr)
{
	char buf[4];

	out8(MCR, 0x10 | 0x01); /* DTR -> DSR */
	cr_assert_eq(in8(MSR) & 0xf0, 0x20);
	out8(MCR, 0x10 | 0x04); /* OUT1 -> RI; DSR fell */
	cr_assert_eq(in8(MSR), 0x40 | 0x02);
	cr_assert_eq(in8(MSR), 0x40, "reading MSR clears the delta bits");
	out8(MCR, 0x10); /* RI fell: trailing edge */
	cr_assert_eq(in8(MSR), 0x04);
	out8(RBR, 'L');
	cr_assert_eq(in8(LSR) & 0x01, 0x01);
	cr_assert_eq(in8(RBR), 'L');
	cr_assert_eq(drain_pipe(buf, sizeof(buf)), 0, "loopback transmits nothing outside");
	out8(MCR, 0);
	cr_assert_eq(in8(MSR) & 0xf0, 0xb0, "a present modem: DCD, DSR, CTS");
}

Test(serial, thre_interrupt_appears_with_etbei_and_clears_on_iir_read)
{
	out8(MCR, 0x08); /* OUT2: Linux sets it when it uses the IRQ */
	cr_assert_eq(irq_state.level, 0);
	out8(IER, 0x02);
	cr_assert_eq(irq_state.level, 1);
	cr_assert_eq(in8(IIR), 0x02);
	cr_assert_eq(irq_state.level, 0);
	cr_assert_eq(in8(IIR), 0x01);
	out8(RBR, 'x');
	cr_assert_eq(irq_state.level, 1, "THR empties again at once");
	cr_assert_eq(in8(IIR), 0x02);
	cr_assert_eq(irq_state.level, 0);
}

/* serial8250_do_startup()'s UART_BUG_THRE test: THRE must come back when THRI is re-set. */
Test(serial, thre_interrupt_reasserts_each_time_etbei_is_set)
{
	out8(MCR, 0x08);
	out8(IER, 0x02);
	cr_assert_eq(in8(IIR) & 0x01, 0);
	out8(IER, 0);
	out8(IER, 0x02);
	cr_assert_eq(in8(IIR) & 0x0f, 0x02);
	out8(IER, 0);
	cr_assert_eq(irq_state.level, 0);
}

Test(serial, irq_line_is_gated_by_out2_and_off_in_loopback)
{
	out8(IER, 0x02);
	cr_assert_eq(irq_state.level, 0, "no OUT2: the PC's IRQ buffer is off");
	cr_assert_eq(in8(IIR), 0x02, "the interrupt is still pending in the UART");
	out8(IER, 0);
	out8(MCR, 0x08);
	out8(IER, 0x02);
	cr_assert_eq(irq_state.level, 1);
	out8(MCR, 0x18);
	cr_assert_eq(irq_state.level, 0);
	out8(MCR, 0x08);
	cr_assert_eq(irq_state.level, 1);
}

Test(serial, received_bytes_come_out_of_rbr_in_order)
{
	serial_input(uart, "abc", 3);
	cr_assert_eq(in8(LSR) & 0x01, 1);
	cr_assert_eq(in8(RBR), 'a');
	cr_assert_eq(in8(RBR), 'b');
	cr_assert_eq(in8(LSR) & 0x01, 1);
	cr_assert_eq(in8(RBR), 'c');
	cr_assert_eq(in8(LSR) & 0x01, 0);
}

Test(serial, rx_interrupt_holds_until_the_fifo_is_drained)
{
	out8(MCR, 0x08);
	out8(IER, 0x01);
	cr_assert_eq(irq_state.level, 0);
	serial_input(uart, "ok", 2);
	cr_assert_eq(irq_state.level, 1);
	cr_assert_eq(in8(IIR), 0x04);
	cr_assert_eq(in8(RBR), 'o');
	cr_assert_eq(irq_state.level, 1);
	cr_assert_eq(in8(RBR), 'k');
	cr_assert_eq(irq_state.level, 0);
	cr_assert_eq(in8(IIR), 0x01);
}

Test(serial, fifo_reports_timeout_below_trigger_and_data_at_trigger)
{
	char bytes[14];

	memset(bytes, 'z', sizeof(bytes));
	out8(IIR, 0xc1); /* FIFO on, trigger at 14 */
	out8(IER, 0x01);
	serial_input(uart, bytes, 3);
	cr_assert_eq(in8(IIR), 0xcc);
	serial_input(uart, bytes, 11);
	cr_assert_eq(in8(IIR), 0xc4);
	out8(IIR, 0xc3); /* clear RX */
	cr_assert_eq(in8(LSR) & 0x01, 0);
	cr_assert_eq(in8(IIR), 0xc1);
}

Test(serial, input_past_the_64_byte_fifo_is_dropped_with_overrun)
{
	uint8_t bytes[100];

	for (unsigned i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	serial_input(uart, bytes, sizeof(bytes));
	cr_assert_eq(in8(LSR) & 0x03, 0x03, "DR and OE");
	for (unsigned i = 0; i < 64; i++)
		cr_assert_eq(in8(RBR), i);
	cr_assert_eq(in8(LSR) & 0x03, 0, "drained; OE cleared by the earlier LSR read");
}

Test(serial, line_status_interrupt_outranks_rx_and_thre)
{
	uint8_t bytes[65] = { 0 };

	out8(MCR, 0x08);
	out8(IER, 0x07);
	serial_input(uart, bytes, sizeof(bytes));
	cr_assert_eq(in8(IIR), 0x06);
	in8(LSR);
	cr_assert_eq(in8(IIR), 0x04);
	out8(IIR, 0x03); /* FIFO on and cleared */
	cr_assert_eq(in8(IIR), 0xc2);
	cr_assert_eq(in8(IIR), 0xc1);
}

Test(serial, broken_pipe_output_never_kills_or_stalls)
{
	close(pipe_fd[0]);
	pipe_fd[0] = -1;
	for (int i = 0; i < 100; i++)
		out8(RBR, 'x');
	cr_assert_eq(in8(LSR), 0x60);
}

Test(serial, full_output_pipe_drops_bytes_instead_of_stalling, .timeout = 10)
{
	struct timespec t0, t1;
	char fill[4096];
	double secs;

	memset(fill, 'f', sizeof(fill));
	cr_assert_eq(fcntl(pipe_fd[1], F_SETFL, O_NONBLOCK), 0);
	while (write(pipe_fd[1], fill, sizeof(fill)) > 0)
		;
	while (write(pipe_fd[1], fill, 1) > 0)
		;
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(fcntl(pipe_fd[1], F_SETFL, 0), 0); /* a blocking fd, as stdout usually is */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 10000; i++)
		out8(RBR, 'x');
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(secs, 2.0, "10000 bytes to a full pipe took %.2f s", secs);
	/* Once the reader catches up, output flows again. */
	while (read(pipe_fd[0], fill, sizeof(fill)) > 0)
		;
	out8(RBR, '!');
	cr_assert_eq(drain_pipe(fill, sizeof(fill)), 1);
	cr_assert_eq(fill[0], '!');
}

static void *feed_bytes(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < 256; i++) {
		uint8_t c = (uint8_t)i;

		serial_input(uart, &c, 1);
		sched_yield();
	}
	return NULL;
}

Test(serial, input_from_another_thread_arrives_in_order, .timeout = 20)
{
	pthread_t t;
	int last = -1;
	bool done = false;

	out8(IIR, 0x01);
	cr_assert_eq(pthread_create(&t, NULL, feed_bytes, NULL), 0);
	while (last < 255) {
		if (in8(LSR) & 0x01) {
			int c = in8(RBR);

			cr_assert_gt(c, last, "byte %d after %d", c, last);
			last = c;
		} else if (done) {
			break; /* the rest overflowed and was dropped */
		} else {
			done = pthread_tryjoin_np(t, NULL) == 0;
		}
	}
	if (!done)
		pthread_join(t, NULL);
	cr_assert_geq(last, 63, "at least a FIFO's worth arrived");
}

Test(serial, closed_socket_peer_never_kills)
{
	struct serial *s2;
	int sv[2];
	uint8_t c = 'x';

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	cr_assert_eq(serial_create(&s2, &pio, 0x2f8, &chip, GSI, sv[0]), 0);
	for (int i = 0; i < 10; i++)
		cr_assert(bus_access(&pio, 0x2f8, true, &c, 1));
	serial_destroy(s2);
	close(sv[0]);
}
