package bot

import "testing"

// TestEveryParamKindHasASpec: a kind added to the list but not to
// paramKinds would have no parser and no form field.
func TestEveryParamKindHasASpec(t *testing.T) {
	for k := range numParamKinds {
		spec := paramKinds[k]
		if spec.parse == nil || spec.field == "" {
			t.Errorf("paramKind %d has no parser or no form field in paramKinds", k)
		}
	}
}
