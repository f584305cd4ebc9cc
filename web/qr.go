package web

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strconv"

	"github.com/yeqown/go-qrcode/v2"
)

// QR rendering. The library computes the module matrix; drawing it here
// keeps the images exactly as wanted (quiet zone, crisp 1-bit pixels, a
// compact SVG) without the library's graphics dependencies.
const (
	// qrQuietZone is the white border in modules. ISO/IEC 18004 asks for
	// four; scanners, phone cameras especially, fail more often with less.
	qrQuietZone = 4
	// qrTargetPixels is roughly how wide the PNG should be: large enough
	// to scan from a phone screen held at arm's length, small enough to
	// send in chat.
	qrTargetPixels = 400
	// qrMinScale is the smallest size of one module in PNG pixels.
	qrMinScale = 4
)

// qrLevel is the error correction level. Medium (15 %) survives screen
// glare and a scratched display while keeping the code coarse enough to
// scan from a distance; invite URIs are short either way.
var qrLevel = qrcode.ErrorCorrectionMedium

// qrMatrix encodes text and returns its modules, true meaning dark, without
// the quiet zone.
func qrMatrix(text string) ([][]bool, error) {
	// Byte mode: the URI is ASCII with lowercase letters and ;?= which the
	// denser alphanumeric mode cannot hold; naming it skips the guessing.
	code, err := qrcode.NewWith(text,
		qrcode.WithEncodingMode(qrcode.EncModeByte),
		qrcode.WithErrorCorrectionLevel(qrLevel))
	if err != nil {
		return nil, fmt.Errorf("encode qr: %w", err)
	}
	var w matrixWriter
	if err := code.Save(&w); err != nil {
		return nil, fmt.Errorf("encode qr: %w", err)
	}
	return w.bits, nil
}

// matrixWriter captures the matrix the library hands to its writers.
type matrixWriter struct{ bits [][]bool }

func (w *matrixWriter) Write(m qrcode.Matrix) error { w.bits = m.Bitmap(); return nil }
func (w *matrixWriter) Close() error                { return nil }

// qrPNG renders text as a black-on-white PNG with a quiet zone.
func qrPNG(text string) ([]byte, error) {
	bits, err := qrMatrix(text)
	if err != nil {
		return nil, err
	}
	n := len(bits) + 2*qrQuietZone
	scale := max(qrMinScale, qrTargetPixels/n)
	size := n * scale
	// A two-colour palette makes a 1-bit PNG: a few hundred bytes.
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	for y, row := range bits {
		for x, dark := range row {
			if !dark {
				continue
			}
			x0, y0 := (x+qrQuietZone)*scale, (y+qrQuietZone)*scale
			for py := y0; py < y0+scale; py++ {
				off := img.PixOffset(x0, py)
				for i := range scale {
					img.Pix[off+i] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// qrSVG renders text as an SVG whose unit is one module, so it scales to
// any size without blurring. Dark runs in a row become one path segment.
func qrSVG(text string) ([]byte, error) {
	bits, err := qrMatrix(text)
	if err != nil {
		return nil, err
	}
	n := len(bits) + 2*qrQuietZone
	var b bytes.Buffer
	dim := strconv.Itoa(n)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ` + dim + " " + dim +
		`" width="` + strconv.Itoa(n*8) + `" height="` + strconv.Itoa(n*8) +
		`" shape-rendering="crispEdges">`)
	b.WriteString(`<rect width="100%" height="100%" fill="#fff"/><path fill="#000" d="`)
	for y, row := range bits {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", start+qrQuietZone, y+qrQuietZone, x-start, x-start)
		}
	}
	b.WriteString(`"/></svg>` + "\n")
	return b.Bytes(), nil
}
