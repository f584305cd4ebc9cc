package ibr_test

import (
	"context"
	"testing"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
)

// BenchmarkCheckToken measures preauth token checks on one stream against
// the real Prosody, the unit of usage tracking's work: its ns/op is what
// one check costs, and checks/s how many a stream carries. Compare it with
// the tracker's pace (maxChecksPerSecond in invites/tracking.go).
//
//	go test -run XXX -bench CheckToken ./homeserver/ibr
func BenchmarkCheckToken(b *testing.B) {
	srv := prosodytest.Start(b)
	token := srv.MintToken(b)
	ctx := context.Background()
	c, err := ibr.DialChecker(ctx, srv.IBRConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Check(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
