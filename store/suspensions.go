package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Buckets of suspensions. They are created the first time something is
// suspended, so the schema version stays as it is: a file without them
// has suspended nobody.
var (
	bucketSuspended   = []byte("suspended_accounts")
	bucketSuspensions = []byte("suspensions")
)

// suspensionTable records which accounts the bot suspended (one record per
// account) and what each suspend command changed (one record per command
// target), so that unsuspend undoes exactly that.
type suspensionTable struct{ *base }

// SuspendedAccount is one account the bot suspended.
type SuspendedAccount struct {
	Account string    `json:"account"` // bare JID
	By      string    `json:"by"`      // the admin
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"`
	// How is how the server keeps it out: "disabled", "blocked" or
	// "manual" (an admin runs the commands the bot listed).
	How string `json:"how"`
	// Target is the JID the suspend command named (the inviter whose
	// branch this account is in, or the account itself).
	Target string `json:"target"`
}

// Suspension is what one suspend command changed.
type Suspension struct {
	Target string    `json:"target"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	Deep   bool      `json:"deep,omitempty"`
	// Grants are the grants it took away, as they were, so that
	// unsuspend gives them back unchanged.
	Grants []Grant `json:"grants,omitempty"`
	// Accounts are the accounts it suspended.
	Accounts []string `json:"accounts,omitempty"`
	// Cancelled counts the pending invites it cancelled (their tokens are
	// dead at the server; unsuspend cannot bring them back).
	Cancelled int `json:"cancelled,omitempty"`
}

// PutSuspendedAccount records a suspended account with its audit entry
// (about the account unless it names a subject).
func (s suspensionTable) PutSuspendedAccount(ctx context.Context, a SuspendedAccount, entry AuditEntry) error {
	if a.Account == "" {
		return fmt.Errorf("record suspension: empty account: %w", ErrInvalid)
	}
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("record suspension of %s: %w", a.Account, err)
	}
	a.At = a.At.UTC()
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSuspended)
		if err != nil {
			return err
		}
		if err := putJSON(b, []byte(a.Account), a); err != nil {
			return err
		}
		if entry.Subject == "" {
			entry.Subject = a.Account
		}
		_, err = s.appendAudit(tx, entry)
		return err
	})
	if err != nil {
		return fmt.Errorf("record suspension of %s: %w", a.Account, err)
	}
	return nil
}

// SuspendedAccount returns the suspension of account, or ErrNotFound.
func (s suspensionTable) SuspendedAccount(ctx context.Context, account string) (SuspendedAccount, error) {
	var a SuspendedAccount
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return getOptional(tx, bucketSuspended, account, &a)
	})
	if err != nil {
		return SuspendedAccount{}, fmt.Errorf("suspension of %s: %w", account, err)
	}
	return a, nil
}

// SuspendedAccounts returns which of accounts are suspended, by account.
func (s suspensionTable) SuspendedAccounts(ctx context.Context, accounts []string) (map[string]SuspendedAccount, error) {
	out := make(map[string]SuspendedAccount)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSuspended)
		if b == nil {
			return nil
		}
		for _, acct := range accounts {
			raw := b.Get([]byte(acct))
			if raw == nil {
				continue
			}
			var a SuspendedAccount
			if err := json.Unmarshal(raw, &a); err != nil {
				return fmt.Errorf("decode suspension of %s: %w", acct, err)
			}
			out[acct] = a
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("suspended accounts: %w", err)
	}
	return out, nil
}

// DeleteSuspendedAccount forgets the suspension of account with its audit
// entry; ErrNotFound when there is none (and no entry is written).
func (s suspensionTable) DeleteSuspendedAccount(ctx context.Context, account string, entry AuditEntry) error {
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("lift suspension of %s: %w", account, err)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSuspended)
		if b == nil || account == "" || b.Get([]byte(account)) == nil {
			return ErrNotFound
		}
		if err := b.Delete([]byte(account)); err != nil {
			return err
		}
		if entry.Subject == "" {
			entry.Subject = account
		}
		_, err := s.appendAudit(tx, entry)
		return err
	})
	if err != nil {
		return fmt.Errorf("lift suspension of %s: %w", account, err)
	}
	return nil
}

// PutSuspension records what a suspend command changed, replacing an
// earlier record for the same target (a second suspend adds to it: the
// caller merges).
func (s suspensionTable) PutSuspension(ctx context.Context, sp Suspension, entry AuditEntry) error {
	if sp.Target == "" {
		return fmt.Errorf("record suspend: empty target: %w", ErrInvalid)
	}
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("record suspend of %s: %w", sp.Target, err)
	}
	sp.At = sp.At.UTC()
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSuspensions)
		if err != nil {
			return err
		}
		if err := putJSON(b, []byte(sp.Target), sp); err != nil {
			return err
		}
		if entry.Subject == "" {
			entry.Subject = sp.Target
		}
		_, err = s.appendAudit(tx, entry)
		return err
	})
	if err != nil {
		return fmt.Errorf("record suspend of %s: %w", sp.Target, err)
	}
	return nil
}

// Suspension returns what the suspend of target changed, or ErrNotFound.
func (s suspensionTable) Suspension(ctx context.Context, target string) (Suspension, error) {
	var sp Suspension
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return getOptional(tx, bucketSuspensions, target, &sp)
	})
	if err != nil {
		return Suspension{}, fmt.Errorf("suspend of %s: %w", target, err)
	}
	return sp, nil
}

// DeleteSuspension forgets the suspend of target with its audit entry;
// ErrNotFound when there is none.
func (s suspensionTable) DeleteSuspension(ctx context.Context, target string, entry AuditEntry) error {
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("forget suspend of %s: %w", target, err)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSuspensions)
		if b == nil || target == "" || b.Get([]byte(target)) == nil {
			return ErrNotFound
		}
		if err := b.Delete([]byte(target)); err != nil {
			return err
		}
		if entry.Subject == "" {
			entry.Subject = target
		}
		_, err := s.appendAudit(tx, entry)
		return err
	})
	if err != nil {
		return fmt.Errorf("forget suspend of %s: %w", target, err)
	}
	return nil
}

// getOptional reads key's JSON record from a bucket that may not exist
// yet into v, or ErrNotFound.
func getOptional(tx *bbolt.Tx, bucket []byte, key string, v any) error {
	b := tx.Bucket(bucket)
	if b == nil || key == "" {
		return ErrNotFound
	}
	raw := b.Get([]byte(key))
	if raw == nil {
		return ErrNotFound
	}
	return json.Unmarshal(raw, v)
}
