/* How a device raises an interrupt line without knowing KVM. */
#ifndef VMM_IRQ_H
#define VMM_IRQ_H

/*
 * set_level(opaque, gsi, level): level 1 asserts, 0 deasserts the line (level-triggered
 * devices hold it until the guest acknowledges; edge devices pulse 1 then 0).
 * Safe to call from any thread.
 */
struct irq_chip {
	void (*set_level)(void *opaque, unsigned gsi, int level);
	void *opaque;
};

static inline void irq_set(const struct irq_chip *c, unsigned gsi, int level)
{
	if (c && c->set_level)
		c->set_level(c->opaque, gsi, level);
}

#endif
