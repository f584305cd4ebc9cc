package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// tagKey is the struct tag that names a configuration key. It is the tag
// viper's decoder reads, so the key tree has a single source of truth.
const tagKey = "mapstructure"

// redactTag marks fields whose value must never be printed or logged
// (`redact:"true"`); Redacted, WriteYAML and LogValue honour it.
const redactTag = "redact"

// Keys returns every configuration key, in struct order.
func Keys() []string {
	var keys []string
	for key := range leaves(reflect.ValueOf(Config{}), "") {
		keys = append(keys, key)
	}
	return keys
}

// field is a struct field's value plus what its tags say about it.
type field struct {
	reflect.Value
	redact bool
}

// fields yields the exported, tagged fields of struct value v by key name.
func fields(v reflect.Value) func(yield func(string, field) bool) {
	return func(yield func(string, field) bool) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get(tagKey), ",")
			if !sf.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				panic(fmt.Sprintf("config: field %s.%s has no %s tag", t.Name(), sf.Name, tagKey))
			}
			if !yield(name, field{Value: v.Field(i), redact: sf.Tag.Get(redactTag) == "true"}) {
				return
			}
		}
	}
}

// leaves yields every non-section field under v with its dotted key.
func leaves(v reflect.Value, prefix string) func(yield func(string, field) bool) {
	return func(yield func(string, field) bool) {
		var walk func(v reflect.Value, prefix string) bool
		walk = func(v reflect.Value, prefix string) bool {
			for name, f := range fields(v) {
				key := joinKey(prefix, name)
				if isSection(f.Type()) {
					if !walk(f.Value, key) {
						return false
					}
				} else if !yield(key, f) {
					return false
				}
			}
			return true
		}
		walk(v, prefix)
	}
}

// isSection reports whether a field of type t is a nested section rather
// than a value.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// unknownKeys returns, sorted, the dotted keys in settings that section type
// t does not have. An unknown section is reported once, not per key inside.
func unknownKeys(settings map[string]any, t reflect.Type, prefix string) []string {
	known := map[string]reflect.Type{}
	for name, f := range fields(reflect.New(t).Elem()) {
		known[name] = f.Type()
	}
	var out []string
	for k, val := range settings {
		key := joinKey(prefix, k)
		ft, ok := known[k]
		if !ok {
			out = append(out, key)
			continue
		}
		if m, ok := val.(map[string]any); ok && isSection(ft) {
			out = append(out, unknownKeys(m, ft, key)...)
		}
	}
	sort.Strings(out)
	return out
}

// ChangedKeys returns, in struct order, the dotted keys whose values differ
// between a and b: what a reload names, key by key. Secrets are compared
// like any value, and only their keys are returned.
func ChangedKeys(a, b *Config) []string {
	bv := map[string]reflect.Value{}
	for key, f := range leaves(reflect.ValueOf(*b), "") {
		bv[key] = f.Value
	}
	var out []string
	for key, f := range leaves(reflect.ValueOf(*a), "") {
		if !reflect.DeepEqual(f.Interface(), bv[key].Interface()) {
			out = append(out, key)
		}
	}
	return out
}
