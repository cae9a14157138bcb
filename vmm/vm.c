/* The VM: create it from a config (KVM, RAM, devices, kernel), run, pause and stop it. */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/x86/boot.h"
#include "vmm/state/state_priv.h"
#include "vmm/vm_priv.h"

#define KVM_API_EXPECTED 12
#define VM_MIN_RAM_BYTES (64ULL << 20)
#define VM_MAX_FILE_BYTES (1ULL << 30)
#define MIB ((uint64_t)1 << 20)
/* Where KVM (on VMX) keeps its real-mode TSS and identity page: the top of the PCI hole. */
#define VM_KVM_TSS_GPA 0xfffbd000ULL
#define VM_KVM_IDENTITY_GPA 0xfffbc000ULL

/* Physical RAM plus swap of this host, from /proc/meminfo; 0 if unknown. */
static uint64_t host_memory_bytes(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	uint64_t total = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kib;

		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1 ||
		    sscanf(line, "SwapTotal: %llu kB", &kib) == 1)
			total += (uint64_t)kib << 10;
	}
	fclose(f);
	return total;
}

/* Read a whole file; what names the file in errors ("kernel", "initrd"). */
static int file_read_all(const char *what, const char *path, uint8_t **out, size_t *len,
			 char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s %s: not a regular file", what, path);
		goto err_close;
	}
	if ((uint64_t)st.st_size > VM_MAX_FILE_BYTES) {
		rc = -EFBIG;
		snprintf(err, errlen, "%s %s: %" PRIu64 " MiB is larger than the 1 GiB limit",
			 what, path, (uint64_t)st.st_size / MIB);
		goto err_close;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s %s: out of memory", what, path);
		goto err_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "%s %s: read: %s", what, path,
				 n < 0 ? strerror(-rc) : "file shrank while reading");
			free(buf);
			goto err_close;
		}
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
err_close:
	close(fd);
	return rc;
}

static int config_check(const struct vm_config *cfg, bool restore, char *err, size_t errlen)
{
	uint64_t host = host_memory_bytes();

	if (!restore && !cfg->kernel_path) {
		snprintf(err, errlen, "no kernel given: pass --kernel FILE");
		return -EINVAL;
	}
	if (cfg->ncpus < 1 || cfg->ncpus > LAYOUT_MAX_VCPUS) {
		snprintf(err, errlen, "--cpus %u is out of range: give 1 to %u", cfg->ncpus,
			 LAYOUT_MAX_VCPUS);
		return -EINVAL;
	}
	if (cfg->ram_bytes < VM_MIN_RAM_BYTES) {
		snprintf(err, errlen, "--mem %" PRIu64 " MiB is too small: give at least 64M",
			 cfg->ram_bytes / MIB);
		return -EINVAL;
	}
	if (cfg->ram_bytes % MIB) {
		snprintf(err, errlen, "--mem must be a whole number of MiB (e.g. 256M)");
		return -EINVAL;
	}
	if (cfg->nnets > VM_MAX_NICS) {
		snprintf(err, errlen, "%u NICs are more than the %u PCI slots allow: give at most %u "
			 "--net", cfg->nnets, VM_MAX_NICS, VM_MAX_NICS);
		return -EINVAL;
	}
	if (host && cfg->ram_bytes > host) {
		snprintf(err, errlen,
			 "--mem %" PRIu64 " MiB is more than this host's %" PRIu64
			 " MiB of RAM and swap: give less", cfg->ram_bytes / MIB, host / MIB);
		return -ENOMEM;
	}
	return 0;
}

static void vm_irq_set_level(void *opaque, unsigned gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };

	ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq);
}

static int kvm_open_vm(struct vm *vm, char *err, size_t errlen)
{
	int rc, v;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open /dev/kvm: %s (load kvm-intel or kvm-amd and "
			 "give this user access to /dev/kvm)", strerror(-rc));
		return rc;
	}
	v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_EXPECTED) {
		snprintf(err, errlen, "/dev/kvm speaks KVM API %d, godwit needs %d", v,
			 KVM_API_EXPECTED);
		return -ENOTSUP;
	}
	v = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (v <= 0) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE failed");
		return -ENOTSUP;
	}
	vm->run_mmap_bytes = (size_t)v;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(-rc));
		return rc;
	}
	/*
	 * VMX needs a TSS and an identity-map page for real mode; other KVM back ends do not
	 * implement these ioctls, so their absence is not an error.
	 */
	ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_KVM_TSS_GPA);
	{
		uint64_t idmap = VM_KVM_IDENTITY_GPA;

		ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
	}
	return 0;
}

/*
 * The in-kernel LAPICs, PICs, IOAPIC and PIT. Created after the memory slots: KVM makes
 * a slot of its own for the LAPIC page, and every later slot change then walks it
 * (measured here: a 256 MiB slot took 8 ms after the irqchip, 0.2 ms before).
 */
static int kvm_create_irqchip(struct vm *vm, char *err, size_t errlen)
{
	int rc;

	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(-rc));
		return rc;
	}
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(-rc));
		return rc;
	}
	vm->irq = (struct irq_chip){ .set_level = vm_irq_set_level, .opaque = vm };
	return 0;
}

static int vm_map_ram(struct vm *vm, char *err, size_t errlen)
{
	int rc;

	vm->ram = mmap(NULL, vm->ram_bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->ram == MAP_FAILED) {
		rc = -errno;
		vm->ram = NULL;
		snprintf(err, errlen, "cannot map %" PRIu64 " MiB of guest RAM: %s",
			 vm->ram_bytes / MIB, strerror(-rc));
		return rc;
	}
	/*
	 * Back guest RAM with transparent huge pages where the host allows: a guest's first
	 * touch of its memory then costs one host fault per 2 MiB, not per 4 KiB (64 ms of
	 * a 16 MiB working set's first fill here). Dirty logging still works per 4 KiB page:
	 * KVM maps logged memory at 4 KiB. Advisory only, so its failure changes nothing.
	 */
	madvise(vm->ram, vm->ram_bytes, MADV_HUGEPAGE);
	guest_mem_layout(&vm->mem, vm->ram, vm->ram_bytes);
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = vm->mem.region[i].gpa,
			.memory_size = vm->mem.region[i].bytes,
			.userspace_addr = (uintptr_t)vm->mem.region[i].hva,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			rc = -errno;
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION %u: %s", i,
				 strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int vm_setup_cpuid(struct vm *vm, const char *spec, char *err, size_t errlen)
{
	int rc;

	vm->cpuid = calloc(1, sizeof(*vm->cpuid));
	if (!vm->cpuid)
		return -ENOMEM;
	vm->cpuid->hdr.nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, &vm->cpuid->hdr) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-rc));
		return rc;
	}
	return cpuid_policy_apply(vm->cpuid, spec, err, errlen);
}

static int vm_setup_devices(struct vm *vm, const struct vm_config *cfg, char *err,
			    size_t errlen)
{
	int rc;

	rc = serial_create(&vm->serial, &vm->pio, LAYOUT_PORT_COM1, &vm->irq, LAYOUT_IRQ_COM1,
			   cfg->console_fd);
	if (rc < 0) {
		snprintf(err, errlen, "serial port: %s", strerror(-rc));
		return rc;
	}
	rc = pm_create(&vm->pm, vm, &vm->pio);
	if (rc < 0) {
		snprintf(err, errlen, "power management ports: %s", strerror(-rc));
		return rc;
	}
	rc = pci_bus_create(&vm->pci, &vm->pio, &vm->mmio);
	if (rc < 0) {
		snprintf(err, errlen, "PCI bus: %s", strerror(-rc));
		return rc;
	}
	if (cfg->disk_path) {
		struct virtio_blk_config bc = { .path = cfg->disk_path, .change_log = true };

		rc = virtio_blk_create(&vm->blk, vm->pci, &vm->mem, &vm->irq, &bc, err, errlen);
		if (rc < 0)
			return rc;
	}
	return vm_nets_create(vm, cfg, err, errlen);
}

static int vm_load_kernel(struct vm *vm, const struct vm_config *cfg, const uint8_t *kernel,
			  size_t kernel_len, const uint8_t *initrd, size_t initrd_len, char *err,
			  size_t errlen)
{
	struct boot_params_in in = {
		.kernel = kernel,
		.kernel_len = kernel_len,
		.initrd = initrd,
		.initrd_len = initrd_len,
		.cmdline = cfg->cmdline ? cfg->cmdline : "",
		.ncpus = cfg->ncpus,
	};
	struct boot_entry entry;
	struct kvm_sregs sregs;
	int rc;

	if (ioctl(vm->vcpu[0].fd, KVM_GET_SREGS, &sregs) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_GET_SREGS: %s", strerror(-rc));
		return rc;
	}
	rc = boot_load(&vm->mem, &in, &entry, &sregs, err, errlen);
	if (rc < 0)
		return rc;
	if (ioctl(vm->vcpu[0].fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(vm->vcpu[0].fd, KVM_SET_REGS, &entry.regs) < 0) {
		rc = -errno;
		snprintf(err, errlen, "setting the boot vCPU's registers: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

/* Read and check the kernel and initrd that vm_create loads. */
static int boot_files_read(const struct vm_config *cfg, uint8_t **kernel, size_t *kernel_len,
			   uint8_t **initrd, size_t *initrd_len, char *err, size_t errlen)
{
	int rc;

	rc = file_read_all("kernel", cfg->kernel_path, kernel, kernel_len, err, errlen);
	if (rc < 0)
		return rc;
	if (boot_probe(*kernel, *kernel_len) == BOOT_KIND_INVALID) {
		snprintf(err, errlen, "kernel %s is neither a Linux bzImage nor an ELF with a PVH "
			 "entry note: pass a bzImage or a vmlinux built with CONFIG_PVH=y",
			 cfg->kernel_path);
		rc = -ENOEXEC;
		goto err_kernel;
	}
	if (cfg->initrd_path) {
		rc = file_read_all("initrd", cfg->initrd_path, initrd, initrd_len, err, errlen);
		if (rc < 0)
			goto err_kernel;
	}
	return 0;
err_kernel:
	free(*kernel);
	*kernel = NULL;
	return rc;
}

/*
 * What vm_create and vm_create_for_restore share: everything but the kernel. The order
 * matters to KVM: the dirty ring must be enabled before any vCPU exists, and the MSR
 * probe needs vCPU 0.
 */
static int vm_build(struct vm **out, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct vm *vm;
	int rc;

	rc = vcpu_signal_setup();
	if (rc < 0)
		return rc;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->kvm_fd = vm->vm_fd = -1;
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		vm->vcpu[i].fd = -1;
	vm->ncpus = cfg->ncpus;
	vm->ram_bytes = cfg->ram_bytes;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	pthread_mutex_init(&vm->dirty.lock, NULL);
	rc = vm_announce_init(vm);
	if (rc < 0) {
		free(vm);
		return rc;
	}
	bus_init(&vm->pio);
	bus_init(&vm->mmio);
	if (cfg->disk_path) {
		vm->disk_path = strdup(cfg->disk_path);
		if (!vm->disk_path) {
			rc = -ENOMEM;
			goto err_vm;
		}
	}

	rc = kvm_open_vm(vm, err, errlen);
	if (rc < 0)
		goto err_vm;
	rc = vm_setup_cpuid(vm, cfg->cpu_features, err, errlen);
	if (rc < 0)
		goto err_vm;
	rc = vm_map_ram(vm, err, errlen);
	if (rc == 0)
		rc = kvm_create_irqchip(vm, err, errlen);
	if (rc < 0)
		goto err_vm;
	rc = dirty_init(vm, cfg->dirty_ring, err, errlen);
	if (rc < 0)
		goto err_vm;
	rc = vm_setup_devices(vm, cfg, err, errlen);
	if (rc < 0)
		goto err_vm;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		rc = vcpu_init(vm, i, err, errlen);
		if (rc < 0)
			goto err_vm;
	}
	rc = vcpu_state_probe(vm, err, errlen);
	if (rc < 0)
		goto err_vm;
	*out = vm;
	return 0;
err_vm:
	vm_destroy(vm);
	return rc;
}

int vm_create(struct vm **out, const struct vm_config *cfg, char *err, size_t errlen)
{
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_len = 0, initrd_len = 0;
	struct vm *vm;
	int rc;

	rc = config_check(cfg, false, err, errlen);
	if (rc < 0)
		return rc;
	rc = boot_files_read(cfg, &kernel, &kernel_len, &initrd, &initrd_len, err, errlen);
	if (rc < 0)
		return rc;
	rc = vm_build(&vm, cfg, err, errlen);
	if (rc < 0)
		goto out;
	rc = vm_load_kernel(vm, cfg, kernel, kernel_len, initrd, initrd_len, err, errlen);
	if (rc < 0) {
		vm_destroy(vm);
		goto out;
	}
	*out = vm;
out:
	free(initrd);
	free(kernel);
	return rc;
}

int vm_create_for_restore(struct vm **out, const struct vm_config *cfg, char *err,
			  size_t errlen)
{
	int rc;

	rc = config_check(cfg, true, err, errlen);
	if (rc < 0)
		return rc;
	return vm_build(out, cfg, err, errlen);
}

static int vm_park_all(struct vm *vm);

int vm_start(struct vm *vm)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != VM_STATE_CREATED) {
		pthread_mutex_unlock(&vm->lock);
		return -EINVAL;
	}
	vm->state = VM_STATE_RUNNING;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		rc = vcpu_thread_start(&vm->vcpu[i]);
		if (rc < 0) {
			vm->stop_req = true;
			vm->exit.kind = VM_EXIT_HOST_ERROR;
			snprintf(vm->exit.detail, sizeof(vm->exit.detail),
				 "cannot start vCPU thread %u: %s", i, strerror(-rc));
			vcpu_kick_all(vm);
			break;
		}
		vm->nalive++;
	}
	/* A hold taken before the start (vm_pause_by): the threads park before running. */
	if (rc == 0 && vm->pause_holders)
		rc = vm_park_all(vm);
	else if (rc == 0)
		vm_nets_run(vm, true);
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

void vm_stop_with(struct vm *vm, const struct vm_exit_info *info)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->stop_req) {
		vm->stop_req = true;
		vm->exit = *info;
	}
	vcpu_kick_all(vm);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_set_vcpu_thread_init(struct vm *vm, void (*fn)(void *ctx, unsigned vcpu), void *ctx)
{
	pthread_mutex_lock(&vm->lock);
	vm->thread_init = fn;
	vm->thread_init_ctx = ctx;
	vm->thread_init_gen++;
	/* Running vCPUs call it after their current exit; kick them out of KVM_RUN. */
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_request_stop(struct vm *vm)
{
	struct vm_exit_info info = { .kind = VM_EXIT_QUIT };

	snprintf(info.detail, sizeof(info.detail), "stopped on request");
	vm_stop_with(vm, &info);
}

int vm_wait(struct vm *vm, struct vm_exit_info *info)
{
	pthread_mutex_lock(&vm->lock);
	while (vm->nalive > 0)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm_nets_run(vm, false); /* nothing touches guest RAM once the VM has stopped */
	vm->state = VM_STATE_STOPPED;
	if (info)
		*info = vm->exit;
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vm->vcpu[i].thread_started) {
			pthread_join(vm->vcpu[i].thread, NULL);
			vm->vcpu[i].thread_started = false;
		}
	}
	return 0;
}

/* Park every vCPU and wait until all are. vm->lock held. Returns 0 or -EINVAL (stopping). */
static int vm_park_all(struct vm *vm)
{
	vm->pause_req = true;
	vcpu_kick_all(vm);
	while (vm->nparked < vm->nalive && !vm->stop_req)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (vm->stop_req) {
		vm->pause_req = false;
		return -EINVAL;
	}
	vm_nets_run(vm, false); /* the devices' I/O threads pause too (virtio_net.c) */
	vm->state = VM_STATE_PAUSED;
	return 0;
}

int vm_pause_by(struct vm *vm, unsigned owner)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->stop_req || vm->state == VM_STATE_STOPPED) {
		rc = -EINVAL;
	} else if (vm->state == VM_STATE_CREATED) {
		/* vm_start parks the vCPUs before they run an instruction. */
		vm->pause_holders |= owner;
		vm->pause_req = true;
	} else if (!vm->pause_holders) {
		/*
		 * Another owner may be parking the vCPUs too (the lock is let go while we
		 * wait): each adds its own bit once they are parked, none overwrites.
		 */
		rc = vm_park_all(vm);
		if (rc == 0)
			vm->pause_holders |= owner;
	} else {
		vm->pause_holders |= owner;
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

int vm_resume_by(struct vm *vm, unsigned owner)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (!(vm->pause_holders & owner)) {
		rc = -EINVAL;
		goto out;
	}
	vm->pause_holders &= ~owner;
	if (vm->pause_holders)
		goto out;
	vm->pause_req = false;
	if (vm->state == VM_STATE_PAUSED) {
		vm->state = VM_STATE_RUNNING;
		vm_nets_run(vm, true);
	}
	pthread_cond_broadcast(&vm->cond);
out:
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

unsigned vm_pause_holders(struct vm *vm)
{
	unsigned h;

	pthread_mutex_lock(&vm->lock);
	h = vm->pause_holders;
	pthread_mutex_unlock(&vm->lock);
	return h;
}

int vm_pause(struct vm *vm)
{
	return vm_pause_by(vm, VM_PAUSE_USER);
}

int vm_resume(struct vm *vm)
{
	return vm_resume_by(vm, VM_PAUSE_USER);
}

enum vm_run_state vm_state(struct vm *vm)
{
	enum vm_run_state s;

	pthread_mutex_lock(&vm->lock);
	s = vm->stop_req ? VM_STATE_STOPPED : vm->state;
	pthread_mutex_unlock(&vm->lock);
	return s;
}

const char *vm_state_name(enum vm_run_state s)
{
	switch (s) {
	case VM_STATE_CREATED:
		return "created";
	case VM_STATE_RUNNING:
		return "running";
	case VM_STATE_PAUSED:
		return "paused";
	case VM_STATE_STOPPED:
		break;
	}
	return "stopped";
}

uint64_t vm_ram_bytes(const struct vm *vm)
{
	return vm->ram_bytes;
}

unsigned vm_ncpus(const struct vm *vm)
{
	return vm->ncpus;
}

void vm_console_input(struct vm *vm, const void *buf, size_t len)
{
	if (vm->serial)
		serial_input(vm->serial, buf, len);
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
		if (vm->vcpu[i].fd >= 0)
			vcpu_fini(&vm->vcpu[i]);
	}
	vm_announce_stop(vm);
	vm_nets_destroy(vm);
	if (vm->blk)
		virtio_blk_destroy(vm->blk);
	if (vm->pci)
		pci_bus_destroy(vm->pci);
	pm_destroy(vm->pm);
	if (vm->serial)
		serial_destroy(vm->serial);
	dirty_fini(vm);
	if (vm->ram)
		munmap(vm->ram, vm->ram_bytes);
	free(vm->cpuid);
	free(vm->disk_path);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	bus_destroy(&vm->mmio);
	bus_destroy(&vm->pio);
	pthread_mutex_destroy(&vm->dirty.lock);
	if (vm->ann.ready) {
		pthread_cond_destroy(&vm->ann.cond);
		pthread_mutex_destroy(&vm->ann.lock);
	}
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}
