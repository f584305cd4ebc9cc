package config

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"
)

// Redacted returns a deep copy safe to print: every secret is replaced by
// "<redacted, N bytes>", or "<unset>" when empty.
func (c *Config) Redacted() Config {
	r := *c
	for _, f := range leaves(reflect.ValueOf(&r).Elem(), "") {
		switch {
		case f.redact:
			f.Set(reflect.ValueOf(redact(f.String())))
		case f.Kind() == reflect.Slice && !f.IsNil():
			// Do not share backing arrays with c.
			f.Set(reflect.AppendSlice(reflect.MakeSlice(f.Type(), 0, f.Len()), f.Value))
		}
	}
	return r
}

func redact(s string) string {
	if s == "" {
		return "<unset>"
	}
	return fmt.Sprintf("<redacted, %d bytes>", len(s))
}

// LogValue makes slog print the redacted configuration, so logging a Config
// cannot leak a secret.
func (c Config) LogValue() slog.Value {
	return groupValue(reflect.ValueOf(c.Redacted()))
}

func groupValue(v reflect.Value) slog.Value {
	var attrs []slog.Attr
	for key, f := range fields(v) {
		if isSection(f.Type()) {
			attrs = append(attrs, slog.Attr{Key: key, Value: groupValue(f.Value)})
		} else {
			attrs = append(attrs, slog.Any(key, f.Interface()))
		}
	}
	return slog.GroupValue(attrs...)
}

// WriteYAML writes the effective configuration, secrets redacted, as YAML
// with the file's key names.
func (c *Config) WriteYAML(w io.Writer) error {
	doc := &yaml.Node{
		Kind: yaml.DocumentNode,
		HeadComment: "effective invitebot configuration (file, environment and defaults); secrets redacted\n" +
			"invites are minted " + c.MintingSummary(),
	}
	body, err := yamlNode(reflect.ValueOf(c.Redacted()))
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	doc.Content = []*yaml.Node{body}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// yamlNode builds a mapping node in struct order, which yaml.Marshal of a
// map would not keep.
func yamlNode(v reflect.Value) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for key, f := range fields(v) {
		var val *yaml.Node
		if isSection(f.Type()) {
			var err error
			if val, err = yamlNode(f.Value); err != nil {
				return nil, err
			}
		} else if d, ok := f.Interface().(time.Duration); ok {
			// Durations as "1m0s", the form they are written in.
			val = &yaml.Node{Kind: yaml.ScalarNode, Value: d.String()}
		} else {
			val = new(yaml.Node)
			if err := val.Encode(f.Interface()); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, val)
	}
	return m, nil
}
