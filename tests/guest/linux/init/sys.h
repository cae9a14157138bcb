/* Raw x86_64 Linux system calls and the few libc-like helpers the freestanding test /init needs. */
#ifndef GUEST_LINUX_INIT_SYS_H
#define GUEST_LINUX_INIT_SYS_H

#include <stddef.h>
#include <stdint.h>

/* System call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
enum {
	SYS_read = 0,
	SYS_write = 1,
	SYS_open = 2,
	SYS_close = 3,
	SYS_mmap = 9,
	SYS_ioctl = 16,
	SYS_pread64 = 17,
	SYS_pwrite64 = 18,
	SYS_getpid = 39,
	SYS_socket = 41,
	SYS_sendto = 44,
	SYS_recvfrom = 45,
	SYS_bind = 49,
	SYS_listen = 50,
	SYS_setsockopt = 54,
	SYS_exit = 60,
	SYS_fcntl = 72,
	SYS_fsync = 74,
	SYS_mkdir = 83,
	SYS_sysinfo = 99,
	SYS_sync = 162,
	SYS_mount = 165,
	SYS_umount2 = 166,
	SYS_reboot = 169,
	SYS_sched_getaffinity = 204,
	SYS_clock_gettime = 228,
	SYS_clock_nanosleep = 230,
	SYS_ppoll = 271,
	SYS_accept4 = 288,
	SYS_dup3 = 292,
	SYS_getrandom = 318,
};

/* The same numbers in the i386 table, used through int $0x80. */
enum {
	SYS32_getpid = 20,
};

#define O_RDONLY 00
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_NOCTTY 0400
#define O_TRUNC 01000
#define O_SYNC 04010000
#define O_DIRECT 040000
#define O_CLOEXEC 02000000

#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 0x02
#define MAP_ANONYMOUS 0x20
#define MAP_POPULATE 0x8000
#define MAP_FIXED_NOREPLACE 0x100000

#define CLOCK_MONOTONIC 1
#define TIMER_ABSTIME 1
#define GRND_NONBLOCK 1
#define GRND_INSECURE 4
#define F_GETFD 1
#define BLKGETSIZE64 0x80081272UL

#define LINUX_REBOOT_MAGIC1 0xfee1deadUL
#define LINUX_REBOOT_MAGIC2 672274793UL
#define LINUX_REBOOT_CMD_RESTART 0x01234567UL

/* Sockets and interfaces (IPv4 only). */
#define AF_INET 2
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_NONBLOCK 04000
#define SOCK_CLOEXEC 02000000
#define SOL_SOCKET 1
#define SO_REUSEADDR 2
#define MSG_NOSIGNAL 0x4000
#define POLLIN 1
#define POLLOUT 4
#define SIOCGIFFLAGS 0x8913
#define SIOCSIFFLAGS 0x8914
#define SIOCSIFADDR 0x8916
#define SIOCSIFNETMASK 0x891c
#define IFF_UP 1

#define EAGAIN 11
#define EINTR 4
#define EBUSY 16
#define EEXIST 17
#define ENOENT 2

#define PAGE_BYTES 4096UL
#define SECTOR_BYTES 512UL

struct timespec_raw {
	int64_t tv_sec;
	int64_t tv_nsec;
};

/* struct sockaddr_in: port and address in network byte order. */
struct sockaddr_in_raw {
	uint16_t family;
	uint16_t port;
	uint32_t addr;
	uint8_t zero[8];
};

/* struct ifreq: the name, then a union of which the address and the flags are used. */
struct ifreq_raw {
	char name[16];
	union {
		struct sockaddr_in_raw sin;
		short flags;
		char pad[24];
	} u;
};

struct pollfd_raw {
	int fd;
	short events;
	short revents;
};

/* struct sysinfo of the x86_64 ABI (include/uapi/linux/sysinfo.h). */
struct sysinfo_raw {
	int64_t uptime;
	uint64_t loads[3];
	uint64_t totalram;
	uint64_t freeram;
	uint64_t sharedram;
	uint64_t bufferram;
	uint64_t totalswap;
	uint64_t freeswap;
	uint16_t procs;
	uint16_t pad;
	uint32_t pad2;
	uint64_t totalhigh;
	uint64_t freehigh;
	uint32_t mem_unit;
	char reserved[4];
};

/* A system call through the `syscall` instruction: returns the raw kernel result, -errno on failure. */
static inline long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define sys0(n) sys6((n), 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* A 32-bit ABI system call through int $0x80 (needs CONFIG_IA32_EMULATION). */
static inline long sys_int80_0(long nr)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr)
			 : "r8", "r9", "r10", "r11", "memory", "cc");
	return ret;
}

static inline uint64_t rdtsc_raw(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* The splitmix64 finaliser: the one pattern generator for memory and disk. */
static inline uint64_t splitmix64(uint64_t x)
{
	uint64_t z;

	x += 0x9e3779b97f4a7c15ULL;
	z = x;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif /* GUEST_LINUX_INIT_SYS_H */
