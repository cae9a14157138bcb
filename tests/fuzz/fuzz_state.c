/* Fuzz the VM state loader (vmm/vm_restore.c and the devices' state loads) without KVM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "util/crc32c.h"
#include "vmm/devices.h"
#include "vmm/x86/layout.h"
#include "vmm/state/state_priv.h"
#include "vmm/vm.h"
#include "vmm/vm_priv.h"
#include "vmm/vm_state.h"

/*
 * Input: a flags byte, then a state blob as vm_state_save writes it. The harness fixes
 * the blob's CRC32C trailer and (unless flags bit 0) its total length, so mutations reach
 * the records. It reads the machine the blob describes with vm_state_peek, as a restore
 * does to size its VM shell, builds that machine's device models (UART, PM, PCI bus and,
 * with a disk, virtio-blk on a memfd) the way vm_create wires them, and runs what
 * vm_state_load runs around its KVM calls: vs_restore_decode, which decodes and checks the
 * whole blob before KVM is touched, then vs_restore_devices, the real device loads. KVM
 * is never called: the harness ends where the ioctls begin, and KVM checks what they
 * pass on its own. The host's CPUID is a table that offers every feature. A device that
 * took a state must take what it saves from it again.
 */
#define FUZZ_DISK_MAX (1u << 20)

static struct cpuid_table *host_cpuid(void)
{
	static struct cpuid_table *t;
	static const uint32_t base[] = { 0, 0x40000000u, 0x80000000u };

	if (t)
		return t;
	t = fuzz_alloc(sizeof(*t));
	memset(t, 0, sizeof(*t));
	for (unsigned b = 0; b < 3; b++) {
		for (uint32_t leaf = 0; leaf <= 0x20; leaf++) {
			struct kvm_cpuid_entry2 *e = &t->hdr.entries[t->hdr.nent++];

			/* No significant index: this entry answers every subleaf. */
			e->function = base[b] + leaf;
			e->eax = e->ebx = e->ecx = e->edx = UINT32_MAX;
		}
	}
	return t;
}

static void no_irq(void *opaque, unsigned gsi, int level)
{
	(void)opaque, (void)gsi, (void)level;
}

/* The devices of a VM with the given disk (0: none), wired as vm_create wires them. */
struct machine {
	struct bus pio, mmio;
	struct guest_mem mem;
	uint8_t ram[64 << 10];
	struct irq_chip irq;
	struct vs_devices dev;
	int disk_fd;
};

static int machine_make(struct machine *m, uint64_t disk_bytes)
{
	char path[64], err[256];
	int rc;

	memset(m, 0, sizeof(*m));
	m->disk_fd = -1;
	m->irq.set_level = no_irq;
	guest_mem_layout(&m->mem, m->ram, sizeof(m->ram));
	if (bus_init(&m->pio) < 0 || bus_init(&m->mmio) < 0)
		abort();
	rc = serial_create(&m->dev.serial, &m->pio, LAYOUT_PORT_COM1, &m->irq, LAYOUT_IRQ_COM1, -1);
	if (rc == 0)
		rc = pm_create(&m->dev.pm, NULL, &m->pio);
	if (rc == 0)
		rc = pci_bus_create(&m->dev.pci, &m->pio, &m->mmio);
	if (rc == 0 && disk_bytes) {
		struct virtio_blk_config bc = { .path = path };

		m->disk_fd = memfd_create("godwit-fuzz-disk", MFD_CLOEXEC);
		if (m->disk_fd < 0 || ftruncate(m->disk_fd, (off_t)disk_bytes) < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", m->disk_fd);
		rc = virtio_blk_create(&m->dev.blk, m->dev.pci, &m->mem, &m->irq, &bc, err,
				       sizeof(err));
	}
	if (rc < 0)
		abort(); /* nothing here depends on the input */
	return 0;
}

static void machine_free(struct machine *m)
{
	virtio_blk_destroy(m->dev.blk);
	pci_bus_destroy(m->dev.pci);
	pm_destroy(m->dev.pm);
	serial_destroy(m->dev.serial);
	bus_destroy(&m->mmio);
	bus_destroy(&m->pio);
	if (m->disk_fd >= 0)
		close(m->disk_fd);
}

/* Each device's state, saved again, must load again: what a loaded VM saves, it can restore. */
static void check_devices_reload(struct machine *m)
{
	for (unsigned i = 0; i < 4; i++) {
		struct vs_enc e;
		int rc = 0;

		vs_enc_init(&e);
		switch (i) {
		case 0:
			serial_state_save(m->dev.serial, &e);
			rc = e.err ? e.err : serial_state_load(m->dev.serial, e.buf, e.len);
			break;
		case 1:
			pm_state_save(m->dev.pm, &e);
			rc = e.err ? e.err : pm_state_load(m->dev.pm, e.buf, e.len);
			break;
		case 2:
			pci_state_save(m->dev.pci, &e);
			rc = e.err ? e.err : pci_state_load(m->dev.pci, e.buf, e.len);
			break;
		default:
			if (m->dev.blk) {
				virtio_blk_state_save(m->dev.blk, &e);
				rc = e.err ? e.err : virtio_blk_state_load(m->dev.blk, e.buf, e.len);
			}
			break;
		}
		vs_enc_free(&e);
		if (rc < 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct machine m;
	struct vm_state_info info;
	struct vs_restore *r;
	struct vs_shape shape;
	uint8_t *blob, flags;
	size_t len;
	char err[512];

	if (size < 1)
		return 0;
	flags = data[0];
	len = size - 1;
	blob = fuzz_dup(data + 1, len);
	if (len >= VS_HEADER_BYTES + VS_TRAILER_BYTES) {
		if (!(flags & 1))
			le64_encode(blob + 16, len);
		le32_encode(blob + len - VS_TRAILER_BYTES, crc32c(0, blob, len - VS_TRAILER_BYTES));
	}
	/* A machine no VM shell could be made for is refused before the blob is loaded. */
	if (vm_state_peek(blob, len, &info, err, sizeof(err)) < 0 || info.ncpus == 0 ||
	    info.ncpus > LAYOUT_MAX_VCPUS || info.disk_bytes % 512 || info.disk_bytes > FUZZ_DISK_MAX)
		goto out;
	shape = (struct vs_shape){
		.ram_bytes = info.ram_bytes,
		.disk_bytes = info.disk_bytes,
		.ncpus = info.ncpus,
		.has_blk = info.disk_bytes != 0,
	};
	if (vs_restore_decode(&r, &shape, host_cpuid(), blob, len, err, sizeof(err)) == 0) {
		machine_make(&m, info.disk_bytes);
		if (vs_restore_devices(r, &m.dev, err, sizeof(err)) == 0) {
			check_devices_reload(&m);
			fuzz_accepted++;
		}
		machine_free(&m);
		vs_restore_free(r);
	}
out:
	free(blob);
	return 0;
}

/* ---- Seeds: vm_state_save of VM shells on this host's KVM --------------------------------- */

static int seed(const char *dir, const char *name, unsigned ncpus, uint64_t disk_bytes)
{
	char disk[512], err[256];
	struct vm_config cfg = {
		.ram_bytes = 64ull << 20,
		.ncpus = ncpus,
		.console_fd = -1,
		.cpu_features = "pvm-test",
	};
	struct vm *vm;
	uint8_t *blob;
	size_t len;
	int rc;

	if (disk_bytes) {
		int fd;

		snprintf(disk, sizeof(disk), "%s/%s.img", fuzz_scratch_dir(), name);
		fd = open(disk, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)disk_bytes) < 0)
			return -errno;
		close(fd);
		cfg.disk_path = disk;
	}
	rc = vm_create_for_restore(&vm, &cfg, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "fuzz_state seeds need KVM: %s\n", err);
		return -ENODEV;
	}
	rc = vm_state_save(vm, &blob, &len);
	vm_destroy(vm);
	if (rc < 0)
		return rc;
	rc = fuzz_seed_write2(dir, name, (uint8_t[]){ 0 }, 1, blob, len);
	free(blob);
	return rc;
}

int fuzz_write_seeds(const char *dir)
{
	int rc = seed(dir, "seed-1cpu", 1, 0);

	if (rc == 0)
		rc = seed(dir, "seed-2cpu-disk", 2, 256 << 10);
	return rc;
}
