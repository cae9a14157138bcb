/* An 8250/16550A UART on eight I/O ports, as Linux's 8250 driver probes and drives it. */
#include "vmm/devices.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/state/state_codec.h"

/* Register offsets from the base port; DLL and DLM replace RBR/THR and IER while LCR.DLAB. */
#define UART_RBR 0 /* read: receive buffer; write: THR */
#define UART_IER 1
#define UART_IIR 2 /* read: interrupt identification; write: FCR */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_ERBFI 0x01 /* receive data available */
#define UART_IER_ETBEI 0x02 /* transmit holding register empty */
#define UART_IER_ELSI  0x04 /* receiver line status */
#define UART_IER_EDSSI 0x08 /* modem status */
#define UART_IER_MASK  0x0f /* a 16550A has no more; Linux's XScale probe checks bit 6 stays 0 */

#define UART_IIR_NO_INT  0x01
#define UART_IIR_MSI     0x00
#define UART_IIR_THRI    0x02
#define UART_IIR_RDI     0x04
#define UART_IIR_RLSI    0x06
#define UART_IIR_TIMEOUT 0x0c
#define UART_IIR_FIFO_ON 0xc0 /* bits 6-7: FIFOs enabled; bit 5 (16750 64-byte mode) stays 0 */

#define UART_FCR_ENABLE   0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_CLEAR_TX 0x04
#define UART_FCR_KEEP     0xc9 /* enable, DMA mode, RX trigger level */

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08 /* on PCs, gates the UART's interrupt onto the ISA line */
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f

#define UART_LSR_DR     0x01
#define UART_LSR_OE     0x02
#define UART_LSR_PE     0x04
#define UART_LSR_FE     0x08
#define UART_LSR_BI     0x10
#define UART_LSR_THRE   0x20
#define UART_LSR_TEMT   0x40
#define UART_LSR_ERRORS (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

#define UART_MSR_DCTS  0x01
#define UART_MSR_DDSR  0x02
#define UART_MSR_TERI  0x04
#define UART_MSR_DDCD  0x08
#define UART_MSR_DELTA 0x0f
#define UART_MSR_CTS   0x10
#define UART_MSR_DSR   0x20
#define UART_MSR_RI    0x40
#define UART_MSR_DCD   0x80

/*
 * Host input waits in a 64-byte receive buffer. What the UART sends itself in loopback
 * fills only the 16 bytes a 16550A's FIFO holds: Linux's size_fifo() counts them, and at
 * 64 it would take the port for a U6 16550A (with auto flow control we do not have).
 */
#define SERIAL_FIFO_BYTES 64
#define SERIAL_LOOP_FIFO_BYTES 16
#define SERIAL_OUT_WAIT_MS 50 /* longest a busy console may hold up a vCPU per byte */

enum serial_out_kind {
	SERIAL_OUT_NONE,  /* out_fd < 0: output is discarded */
	SERIAL_OUT_FILE,  /* regular file: never blocks, never raises SIGPIPE */
	SERIAL_OUT_PIPE,  /* pipe, FIFO or socket: may block, may raise SIGPIPE */
	SERIAL_OUT_OTHER, /* tty or other character device: may block */
};

/*
 * Every field below lock is owned by whichever thread holds lock: vCPU threads through the
 * bus handlers, and the stdin thread through serial_input(). The transmitter has no
 * clock: a byte written to THR leaves at once, so THR and the shift register are always
 * empty (LSR.THRE and LSR.TEMT stay set).
 */
struct serial {
	struct bus *pio;
	uint16_t base;
	struct irq_chip irq;
	unsigned gsi;
	int out_fd;
	enum serial_out_kind out_kind;

	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, lsr_errors, msr_delta, scr, fcr, dll, dlm;
	bool thre_pending;   /* THRE interrupt armed: set when THR empties, cleared by IIR/THR */
	bool out_congested;  /* out_fd was full: drop without waiting until it drains */
	bool out_dead;       /* out_fd failed for good (EPIPE, EBADF, ...): drop all output */
	int irq_level;       /* what we last told irq for gsi */
	uint64_t dropped_out_bytes, dropped_in_bytes;
	uint8_t rx[SERIAL_FIFO_BYTES];
	unsigned rx_head, rx_count;
};

/* Modem status inputs: loopback feeds them from MCR, otherwise a modem that is always there. */
static uint8_t serial_msr_lines(const struct serial *s)
{
	uint8_t m = s->mcr;

	if (!(m & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	return (uint8_t)(((m & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
			 ((m & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
			 ((m & UART_MCR_OUT1) ? UART_MSR_RI : 0) |
			 ((m & UART_MCR_OUT2) ? UART_MSR_DCD : 0));
}

static unsigned serial_rx_trigger(const struct serial *s)
{
	static const unsigned level[4] = { 1, 4, 8, 14 };

	if (!(s->fcr & UART_FCR_ENABLE))
		return 1;
	return level[s->fcr >> 6];
}

/* The highest-priority pending interrupt as IIR bits 0-3 (UART_IIR_NO_INT if none). */
static uint8_t serial_iir_id(const struct serial *s)
{
	if ((s->ier & UART_IER_ELSI) && (s->lsr_errors & UART_LSR_ERRORS))
		return UART_IIR_RLSI;
	if ((s->ier & UART_IER_ERBFI) && s->rx_count) {
		/* No clock, so the character timeout a real FIFO raises later fires at once. */
		if (s->rx_count >= serial_rx_trigger(s) || !(s->fcr & UART_FCR_ENABLE))
			return UART_IIR_RDI;
		return UART_IIR_TIMEOUT;
	}
	if ((s->ier & UART_IER_ETBEI) && s->thre_pending)
		return UART_IIR_THRI;
	if ((s->ier & UART_IER_EDSSI) && (s->msr_delta & UART_MSR_DELTA))
		return UART_IIR_MSI;
	return UART_IIR_NO_INT;
}

/*
 * Drive the level-triggered line from the pending interrupt. On a PC the UART's INTRPT
 * pin reaches the ISA bus only through a buffer enabled by OUT2, which Linux sets in
 * startup when it uses the IRQ; loopback forces the OUT pins inactive, so no IRQ then.
 * Called with lock held, so two threads cannot apply stale levels out of order.
 */
static void serial_irq_update(struct serial *s)
{
	int level = serial_iir_id(s) != UART_IIR_NO_INT && (s->mcr & UART_MCR_OUT2) &&
		    !(s->mcr & UART_MCR_LOOP);

	if (level != s->irq_level) {
		s->irq_level = level;
		irq_set(&s->irq, s->gsi, level);
	}
}

static void serial_rx_push(struct serial *s, uint8_t c, unsigned depth)
{
	if (s->rx_count >= depth) {
		s->lsr_errors |= UART_LSR_OE;
		s->dropped_in_bytes++;
		return;
	}
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_BYTES] = c;
	s->rx_count++;
}

static uint8_t serial_rx_pop(struct serial *s)
{
	uint8_t c;

	if (!s->rx_count)
		return 0;
	c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_BYTES;
	s->rx_count--;
	return c;
}

/*
 * write(2) one byte to a pipe or socket with SIGPIPE blocked in this thread, so a closed reader
 * yields EPIPE instead of killing the VMM; a SIGPIPE this write raised is consumed.
 */
static ssize_t serial_write_nosigpipe(int fd, const uint8_t *c)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t pipe_set, old_set, pending;
	bool was_pending;
	ssize_t n;
	int err;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	n = write(fd, c, 1);
	err = errno;
	if (n < 0 && err == EPIPE && !was_pending)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	errno = err;
	return n;
}

/*
 * Send one transmitted byte to out_fd. The guest never waits on the host: a full fd gets
 * SERIAL_OUT_WAIT_MS once, then bytes are dropped until it drains; a broken one is
 * abandoned. Called with lock held.
 */
static void serial_out_byte(struct serial *s, uint8_t c)
{
	struct pollfd pfd = { .fd = s->out_fd, .events = POLLOUT };
	ssize_t n;

	if (s->out_kind == SERIAL_OUT_NONE || s->out_dead)
		goto drop;
	if (s->out_kind != SERIAL_OUT_FILE) {
		int ready = poll(&pfd, 1, s->out_congested ? 0 : SERIAL_OUT_WAIT_MS);

		if (ready == 0)
			s->out_congested = true;
		if (ready <= 0)
			goto drop; /* full, or poll itself interrupted: drop this byte only */
		if (!(pfd.revents & POLLOUT)) {
			s->out_dead = true; /* POLLERR, POLLHUP or POLLNVAL: the reader is gone */
			goto drop;
		}
		s->out_congested = false;
	}
	do {
		if (s->out_kind == SERIAL_OUT_PIPE)
			n = serial_write_nosigpipe(s->out_fd, &c);
		else
			n = write(s->out_fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	if (n == 1)
		return;
	if (n < 0 && errno != EAGAIN)
		s->out_dead = true;
drop:
	s->dropped_out_bytes++;
}

static void serial_thr_write(struct serial *s, uint8_t c)
{
	if (s->mcr & UART_MCR_LOOP)
		serial_rx_push(s, c, SERIAL_LOOP_FIFO_BYTES);
	else
		serial_out_byte(s, c);
	/* The byte left at once: THR is empty again and its interrupt re-arms. */
	s->thre_pending = true;
}

static void serial_fcr_write(struct serial *s, uint8_t v)
{
	/* Toggling the enable bit resets both FIFOs; the other bits need the enable bit. */
	if ((v ^ s->fcr) & UART_FCR_ENABLE)
		v |= UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX;
	if (v & UART_FCR_CLEAR_RX) {
		s->rx_head = 0;
		s->rx_count = 0;
	}
	s->fcr = (v & UART_FCR_ENABLE) ? (uint8_t)(v & UART_FCR_KEEP) : 0;
}

static void serial_mcr_write(struct serial *s, uint8_t v)
{
	uint8_t before = serial_msr_lines(s), after;

	s->mcr = v & UART_MCR_MASK;
	after = serial_msr_lines(s);
	if ((before ^ after) & UART_MSR_CTS)
		s->msr_delta |= UART_MSR_DCTS;
	if ((before ^ after) & UART_MSR_DSR)
		s->msr_delta |= UART_MSR_DDSR;
	if ((before & UART_MSR_RI) && !(after & UART_MSR_RI))
		s->msr_delta |= UART_MSR_TERI;
	if ((before ^ after) & UART_MSR_DCD)
		s->msr_delta |= UART_MSR_DDCD;
}

static void serial_reg_write(struct serial *s, unsigned reg, uint8_t v)
{
	bool dlab = s->lcr & UART_LCR_DLAB;

	switch (reg) {
	case UART_RBR:
		if (dlab)
			s->dll = v;
		else
			serial_thr_write(s, v);
		break;
	case UART_IER:
		if (dlab) {
			s->dlm = v;
			break;
		}
		/*
		 * Enabling ETBEI while THR is empty raises THRE at once: Linux's startup test
		 * (UART_BUG_THRE) toggles IER.THRI and expects the interrupt back each time.
		 */
		if ((v & ~s->ier & UART_IER_ETBEI))
			s->thre_pending = true;
		s->ier = v & UART_IER_MASK;
		break;
	case UART_IIR:
		serial_fcr_write(s, v);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		serial_mcr_write(s, v);
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default: /* LSR and MSR are read-only: a write is ignored */
		break;
	}
}

static uint8_t serial_reg_read(struct serial *s, unsigned reg)
{
	bool dlab = s->lcr & UART_LCR_DLAB;
	uint8_t v;

	switch (reg) {
	case UART_RBR:
		return dlab ? s->dll : serial_rx_pop(s);
	case UART_IER:
		return dlab ? s->dlm : s->ier;
	case UART_IIR:
		v = serial_iir_id(s);
		if (v == UART_IIR_THRI)
			s->thre_pending = false;
		return (uint8_t)(v | ((s->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO_ON : 0));
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		v = (uint8_t)(s->lsr_errors | UART_LSR_THRE | UART_LSR_TEMT |
			      (s->rx_count ? UART_LSR_DR : 0));
		s->lsr_errors = 0;
		return v;
	case UART_MSR:
		v = (uint8_t)(serial_msr_lines(s) | s->msr_delta);
		s->msr_delta = 0;
		return v;
	default:
		return s->scr;
	}
}

/* Accesses wider than a byte reach consecutive registers, as they would on an ISA bus. */
static void serial_pio_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct serial *s = opaque;
	uint8_t *out = data;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < size; i++)
		out[i] = off + i < 8 ? serial_reg_read(s, (unsigned)(off + i)) : 0xff;
	serial_irq_update(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_pio_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct serial *s = opaque;
	const uint8_t *in = data;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < size && off + i < 8; i++)
		serial_reg_write(s, (unsigned)(off + i), in[i]);
	serial_irq_update(s);
	pthread_mutex_unlock(&s->lock);
}

static const struct bus_dev_ops serial_pio_ops = {
	.read = serial_pio_read,
	.write = serial_pio_write,
};

static enum serial_out_kind serial_out_kind_probe(int fd)
{
	struct stat st;

	if (fd < 0)
		return SERIAL_OUT_NONE;
	if (fstat(fd, &st) < 0)
		return SERIAL_OUT_OTHER;
	if (S_ISREG(st.st_mode))
		return SERIAL_OUT_FILE;
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		return SERIAL_OUT_PIPE;
	return SERIAL_OUT_OTHER;
}

int serial_create(struct serial **out, struct bus *pio, uint16_t base, const struct irq_chip *irq,
		  unsigned gsi, int out_fd)
{
	struct serial *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pio = pio;
	s->base = base;
	if (irq)
		s->irq = *irq;
	s->gsi = gsi;
	s->out_fd = out_fd;
	s->out_kind = serial_out_kind_probe(out_fd);
	s->dll = 0x0c; /* 9600 baud from a 1.8432 MHz clock */
	rc = -pthread_mutex_init(&s->lock, NULL);
	if (rc < 0)
		goto err_free;
	rc = bus_register(pio, base, 8, &serial_pio_ops, s);
	if (rc < 0)
		goto err_mutex;
	*out = s;
	return 0;
err_mutex:
	pthread_mutex_destroy(&s->lock);
err_free:
	free(s);
	return rc;
}

void serial_input(struct serial *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_mutex_lock(&s->lock);
	/* In loopback the receiver listens to the transmitter, not to the outside world. */
	if (s->mcr & UART_MCR_LOOP) {
		s->dropped_in_bytes += len;
	} else {
		for (size_t i = 0; i < len; i++)
			serial_rx_push(s, p[i], SERIAL_FIFO_BYTES);
	}
	serial_irq_update(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	bus_unregister(s->pio, s->base, s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/*
 * SERIAL record: ier lcr mcr lsr_errors msr_delta scr fcr dll dlm thre_pending (u8 each),
 * rx count u8 (0..SERIAL_FIFO_BYTES), then the received bytes oldest first.
 */
void serial_state_save(struct serial *s, struct vs_enc *e)
{
	pthread_mutex_lock(&s->lock);
	vs_enc_u8(e, s->ier);
	vs_enc_u8(e, s->lcr);
	vs_enc_u8(e, s->mcr);
	vs_enc_u8(e, s->lsr_errors);
	vs_enc_u8(e, s->msr_delta);
	vs_enc_u8(e, s->scr);
	vs_enc_u8(e, s->fcr);
	vs_enc_u8(e, s->dll);
	vs_enc_u8(e, s->dlm);
	vs_enc_u8(e, s->thre_pending);
	vs_enc_u8(e, (uint8_t)s->rx_count);
	for (unsigned i = 0; i < s->rx_count; i++)
		vs_enc_u8(e, s->rx[(s->rx_head + i) % SERIAL_FIFO_BYTES]);
	pthread_mutex_unlock(&s->lock);
}

int serial_state_load(struct serial *s, const uint8_t *payload, size_t len)
{
	struct dec d;
	uint8_t r[10], rx[SERIAL_FIFO_BYTES], n;

	d = dec_init(payload, len);
	dec_bytes(&d, r, sizeof(r));
	dec_u8(&d, &n);
	if (n > SERIAL_FIFO_BYTES)
		return -EBADMSG;
	dec_bytes(&d, rx, n);
	if (!dec_done(&d))
		return -EBADMSG;
	/* Only values a guest could have produced: IER, MCR, FCR keep their masks. */
	if ((r[0] & ~UART_IER_MASK) || (r[2] & ~UART_MCR_MASK) || (r[3] & ~UART_LSR_ERRORS) ||
	    (r[4] & ~UART_MSR_DELTA) || (r[6] & ~UART_FCR_KEEP) || r[9] > 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->ier = r[0];
	s->lcr = r[1];
	s->mcr = r[2];
	s->lsr_errors = r[3];
	s->msr_delta = r[4];
	s->scr = r[5];
	s->fcr = r[6];
	s->dll = r[7];
	s->dlm = r[8];
	s->thre_pending = r[9];
	memcpy(s->rx, rx, n);
	s->rx_head = 0;
	s->rx_count = n;
	s->irq_level = -1; /* unknown: drive the line to what the registers say */
	serial_irq_update(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
