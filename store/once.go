package store

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// onceTable records one-time jobs that are done, in the settings bucket
// under "once:" and the job's name: work such as cleaning up after an
// upgrade, which must run once per file, not once per start.
type onceTable struct{ *base }

func onceKey(name string) []byte { return []byte("once:" + name) }

// OnceDone reports whether the job name was marked done (MarkOnceDone).
func (s onceTable) OnceDone(ctx context.Context, name string) (bool, error) {
	var done bool
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		done = tx.Bucket(bucketSettings).Get(onceKey(name)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("once %s: %w", name, err)
	}
	return done, nil
}

// MarkOnceDone records that the job name is done, with a note for whoever
// reads the file (what it did).
func (s onceTable) MarkOnceDone(ctx context.Context, name, note string) error {
	if name == "" {
		return fmt.Errorf("mark once done: empty name: %w", ErrInvalid)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSettings).Put(onceKey(name), []byte(note))
	})
	if err != nil {
		return fmt.Errorf("mark %s done: %w", name, err)
	}
	return nil
}
