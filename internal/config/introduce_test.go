package config

import "testing"

// TestIntroduce: introductions are on unless the file or the environment
// turns them off, and the environment wins.
func TestIntroduce(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  string
		want bool
	}{
		{name: "default", yaml: validYAML, want: true},
		{name: "off in the file", yaml: validYAML + "invites:\n  introduce: false\n", want: false},
		{name: "on in the file", yaml: validYAML + "invites:\n  introduce: true\n", want: true},
		{name: "off from the environment", yaml: validYAML + "invites:\n  introduce: true\n", env: "false", want: false},
		{name: "on from the environment", yaml: validYAML + "invites:\n  introduce: false\n", env: "true", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			if tt.env != "" {
				t.Setenv("INVITEBOT_INVITES_INTRODUCE", tt.env)
			}
			c, err := Load(writeFile(t, t.TempDir(), "config.yaml", tt.yaml))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Invites.Introduce != tt.want {
				t.Errorf("invites.introduce = %v, want %v", c.Invites.Introduce, tt.want)
			}
		})
	}
	if !Defaults().Invites.Introduce {
		t.Error("Defaults() has introductions off")
	}
}
