package web

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
)

// decodeQR reads a QR code from img with an independent decoder.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("bitmap: %v", err)
	}
	// PURE_BARCODE off on purpose: find the code like a camera would.
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{
		gozxing.DecodeHintType_TRY_HARDER: true,
	})
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

// decodePureQR reads the QR code img is, quiet zone and all, without
// searching the image for it: a check of the content, not of how well a
// camera finds it.
func decodePureQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("bitmap: %v", err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{
		gozxing.DecodeHintType_PURE_BARCODE: true,
	})
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

// svgToImage rasterises the SVG subset qrSVG writes (a white rect and one
// path of "M x y h w v1 h-w z" runs), checking that it is that subset, so a
// wrong offset or run length in the writer shows up as a decode failure.
func svgToImage(t *testing.T, data []byte, scale int) image.Image {
	t.Helper()
	var doc struct {
		XMLName xml.Name `xml:"http://www.w3.org/2000/svg svg"`
		ViewBox string   `xml:"viewBox,attr"`
		Rect    struct {
			Fill string `xml:"fill,attr"`
		} `xml:"rect"`
		Path struct {
			Fill string `xml:"fill,attr"`
			D    string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("svg is not XML: %v", err)
	}
	var x0, y0, w, h int
	if _, err := fmt.Sscanf(doc.ViewBox, "%d %d %d %d", &x0, &y0, &w, &h); err != nil || x0 != 0 || y0 != 0 || w != h {
		t.Fatalf("viewBox %q: want a square from 0 0", doc.ViewBox)
	}
	if doc.Rect.Fill != "#fff" || doc.Path.Fill != "#000" {
		t.Fatalf("colours: background %q, modules %q", doc.Rect.Fill, doc.Path.Fill)
	}
	img := image.NewGray(image.Rect(0, 0, w*scale, h*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for _, seg := range strings.Split(doc.Path.D, "z") {
		if seg == "" {
			continue
		}
		var x, y, run, back int
		if _, err := fmt.Sscanf(seg, "M%d %dh%dv1h-%d", &x, &y, &run, &back); err != nil || run != back || run <= 0 {
			t.Fatalf("path segment %q not a module run", seg)
		}
		if x < 0 || y < 0 || x+run > w || y >= h {
			t.Fatalf("path segment %q outside the viewBox", seg)
		}
		for py := y * scale; py < (y+1)*scale; py++ {
			for px := x * scale; px < (x+run)*scale; px++ {
				img.SetGray(px, py, color.Gray{})
			}
		}
	}
	return img
}

func TestQRDecodesToInviteURI(t *testing.T) {
	e := newEnv(t, nil)
	want := uriOf(idPending)

	t.Run("png", func(t *testing.T) {
		w := e.get("/i/" + idPending + "/qr.png")
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/png" {
			t.Fatalf("GET qr.png = %d %s", w.Code, w.Header().Get("Content-Type"))
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Error("QR code (it holds the token) may be cached")
		}
		img, err := png.Decode(bytes.NewReader(w.Body.Bytes()))
		if err != nil {
			t.Fatalf("png: %v", err)
		}
		if got := decodeQR(t, img); got != want {
			t.Errorf("PNG decodes to %q, want %q", got, want)
		}
		b := img.Bounds()
		if b.Dx() != b.Dy() || b.Dx() < qrTargetPixels/2 {
			t.Errorf("PNG is %dx%d: too small to scan from a phone screen", b.Dx(), b.Dy())
		}
		assertQuietZone(t, img)
	})

	t.Run("svg", func(t *testing.T) {
		w := e.get("/i/" + idPending + "/qr.svg")
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("GET qr.svg = %d %s", w.Code, w.Header().Get("Content-Type"))
		}
		img := svgToImage(t, w.Body.Bytes(), 6)
		if got := decodeQR(t, img); got != want {
			t.Errorf("SVG decodes to %q, want %q", got, want)
		}
		assertQuietZone(t, img)
	})
}

// assertQuietZone checks the border of qrQuietZone modules is white. The
// module size is found from the top-left finder pattern, which starts right
// after the quiet zone.
func assertQuietZone(t *testing.T, img image.Image) {
	t.Helper()
	b := img.Bounds()
	dark := func(x, y int) bool {
		r, _, _, _ := img.At(x, y).RGBA()
		return r < 0x8000
	}
	first := -1
	for i := 0; i < b.Dx(); i++ {
		if dark(i, i) { // the diagonal enters the finder at its corner
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatal("no dark pixel on the diagonal")
	}
	// The finder is 7 modules wide and dark along its top edge.
	end := first
	for end < b.Dx() && dark(end, first) {
		end++
	}
	module := (end - first) / 7
	if module == 0 || first != qrQuietZone*module {
		t.Fatalf("code starts at %d px with %d px modules: quiet zone is not %d modules", first, module, qrQuietZone)
	}
	for i := 0; i < b.Dx(); i++ {
		for _, p := range [][2]int{{i, 0}, {0, i}, {i, b.Dy() - 1}, {b.Dx() - 1, i}} {
			if dark(p[0], p[1]) {
				t.Fatalf("dark pixel on the border at %v", p)
			}
		}
	}
}

func TestQRRoundTrip(t *testing.T) {
	// Lengths around version boundaries; a long token forces a large code.
	for _, uri := range []string{
		"xmpp:a.example?register;preauth=x",
		"xmpp:durare.org?register;preauth=" + strings.Repeat("Ab0-_", 8),
		"xmpp:durare.org?register;preauth=" + strings.Repeat("Zz9", 60),
	} {
		t.Run(strconv.Itoa(len(uri)), func(t *testing.T) {
			data, err := qrPNG(uri)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeQR(t, img); got != uri {
				t.Errorf("decoded %q, want %q", got, uri)
			}
			svg, err := qrSVG(uri)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeQR(t, svgToImage(t, svg, 4)); got != uri {
				t.Errorf("SVG decoded %q, want %q", got, uri)
			}
		})
	}
}
