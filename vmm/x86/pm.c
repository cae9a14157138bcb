/* Power control: ACPI PM1a control block (S5 power off) and enough i8042 to reset. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/state/state_codec.h"

/*
 * Ports: LAYOUT_PORT_PM_BASE .. +7 holds PM1a_EVT (status, enable) and PM1a_CNT at +4.
 * A write of SLP_EN to PM1a_CNT powers the machine off (we offer no S1-S4, so any
 * SLP_TYP with SLP_EN means S5). The i8042 answers status reads with "empty" so that a
 * guest's kb_wait() passes, and treats command 0xfe (pulse reset line) as a reset.
 */
struct pm_dev {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t pm1_sts;
	uint16_t pm1_en;
	uint16_t pm1_cnt;
};

static uint64_t bytes_get(const void *data, unsigned size)
{
	uint64_t v = 0;

	memcpy(&v, data, size < 8 ? size : 8);
	return v;
}

static void bytes_put(void *data, unsigned size, uint64_t v)
{
	memcpy(data, &v, size < 8 ? size : 8);
}

static void pm_stop(struct pm_dev *pm, enum vm_exit_kind kind, const char *detail)
{
	struct vm_exit_info info = { .kind = kind };

	strncpy(info.detail, detail, sizeof(info.detail) - 1);
	vm_stop_with(pm->vm, &info);
}

static void pm_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct pm_dev *pm = opaque;
	uint8_t regs[8];

	pthread_mutex_lock(&pm->lock);
	memcpy(regs, &pm->pm1_sts, 2);
	memcpy(regs + 2, &pm->pm1_en, 2);
	memcpy(regs + 4, &pm->pm1_cnt, 2);
	regs[6] = regs[7] = 0;
	pthread_mutex_unlock(&pm->lock);
	memset(data, 0, size);
	if (off < sizeof(regs))
		memcpy(data, regs + off, size < sizeof(regs) - off ? size : sizeof(regs) - off);
}

static void pm_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct pm_dev *pm = opaque;
	uint64_t v = bytes_get(data, size);
	bool off_now = false;

	pthread_mutex_lock(&pm->lock);
	switch (off) {
	case 0:
		pm->pm1_sts &= ~(uint16_t)v; /* write one to clear */
		break;
	case 2:
		pm->pm1_en = (uint16_t)v;
		break;
	case 4:
		pm->pm1_cnt = (uint16_t)(v & ~LAYOUT_PM1_SLP_EN);
		off_now = (v & LAYOUT_PM1_SLP_EN) != 0;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&pm->lock);
	if (off_now)
		pm_stop(pm, VM_EXIT_POWEROFF, "guest powered off (ACPI S5)");
}

static const struct bus_dev_ops pm_ops = {
	.read = pm_read,
	.write = pm_write,
};

/* Port 0x60 data (off 0) and 0x64 status/command (off 4). */
static void i8042_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	(void)opaque;
	(void)off;
	bytes_put(data, size, 0); /* no data waiting, input buffer empty */
}

static void i8042_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	if (off == 4 && (bytes_get(data, size) & 0xff) == 0xfe)
		pm_stop(opaque, VM_EXIT_RESET, "guest reset through the i8042");
}

static const struct bus_dev_ops i8042_ops = {
	.read = i8042_read,
	.write = i8042_write,
};

int pm_create(struct pm_dev **out, struct vm *vm, struct bus *pio)
{
	struct pm_dev *pm = calloc(1, sizeof(*pm));
	int rc;

	if (!pm)
		return -ENOMEM;
	pm->vm = vm;
	pthread_mutex_init(&pm->lock, NULL);
	rc = bus_register(pio, LAYOUT_PORT_PM_BASE, 8, &pm_ops, pm);
	if (rc < 0)
		goto err_free;
	rc = bus_register(pio, LAYOUT_PORT_I8042, 5, &i8042_ops, pm);
	if (rc < 0)
		goto err_unreg_pm;
	*out = pm;
	return 0;
err_unreg_pm:
	bus_unregister(pio, LAYOUT_PORT_PM_BASE, pm);
err_free:
	pthread_mutex_destroy(&pm->lock);
	free(pm);
	return rc;
}

void pm_destroy(struct pm_dev *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

/* PM record: pm1_sts u16, pm1_en u16, pm1_cnt u16 (the i8042 has no state). */
void pm_state_save(struct pm_dev *pm, struct vs_enc *e)
{
	pthread_mutex_lock(&pm->lock);
	vs_enc_u16(e, pm->pm1_sts);
	vs_enc_u16(e, pm->pm1_en);
	vs_enc_u16(e, pm->pm1_cnt);
	pthread_mutex_unlock(&pm->lock);
}

int pm_state_load(struct pm_dev *pm, const uint8_t *payload, size_t len)
{
	struct dec d;
	uint16_t sts, en, cnt;

	d = dec_init(payload, len);
	dec_u16(&d, &sts);
	dec_u16(&d, &en);
	dec_u16(&d, &cnt);
	if (!dec_done(&d))
		return -EBADMSG;
	if (cnt & LAYOUT_PM1_SLP_EN)
		return -EINVAL; /* never stored: writing it powers off */
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = sts;
	pm->pm1_en = en;
	pm->pm1_cnt = cnt;
	pthread_mutex_unlock(&pm->lock);
	return 0;
}
