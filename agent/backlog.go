package agent

import "fmt"

// backlog is what an agent keeps for the runner's pulls, a load's records
// or a receiver's receipts: the items from cursor base on, at most limit of
// them; what does not fit is counted. Its owner's lock guards it.
type backlog[T any] struct {
	items    []T
	base     int64
	limit    int
	overflow int64
}

// add keeps x, or counts it when the backlog is full.
func (b *backlog[T]) add(x T) {
	if len(b.items) >= b.limit {
		b.overflow++
		return
	}
	b.items = append(b.items, x)
}

// end is the cursor after the last item kept.
func (b *backlog[T]) end() int64 { return b.base + int64(len(b.items)) }

// ack forgets the items before cursor from, which the runner acknowledged
// by pulling from it, and lets the array go once most of it is behind.
// what names the items in errors: "records", "receipts".
func (b *backlog[T]) ack(from int64, what string) error {
	if from < b.base {
		return fmt.Errorf("%s before %d were acknowledged and are gone (cursor %d)", what, b.base, from)
	}
	if end := b.end(); from > end {
		return fmt.Errorf("cursor %d is beyond the %d %s kept", from, end, what)
	}
	b.items = b.items[from-b.base:]
	b.base = from
	if cap(b.items) > 4*len(b.items)+1024 {
		b.items = append([]T(nil), b.items...)
	}
	return nil
}
