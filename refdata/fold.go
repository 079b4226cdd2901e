package refdata

import (
	"unicode"
	"unicode/utf8"
)

// latin1Fold maps U+00C0…U+00FF to a base letter, '*' for letters spelled
// with two ('ae', 'th', 'ss'), ' ' for signs.
const latin1Fold = "aaaaaa*ceeeeiiiidnooooo ouuuuy**aaaaaa*ceeeeiiiidnooooo ouuuuy*y"

// latinExtAFold maps U+0100…U+017F the same way.
const latinExtAFold = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii**jjkkkllllllllllnnnnnnnnnoooooo**rrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs"

// foldName appends the search form of a name to dst: letters and digits in
// lower case without accents, every run of other characters as one space,
// none at either end. "Côte d’Ivoire" and "cote d'ivoire" fold alike.
func foldName(dst []byte, s string) []byte {
	start := len(dst)
	sep := false
	for _, r := range s {
		var c byte
		switch {
		case r < utf8.RuneSelf:
			c = byte(r)
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			default:
				c = ' '
			}
		case r >= 0xC0 && r <= 0xFF:
			c = latin1Fold[r-0xC0]
		case r >= 0x100 && r <= 0x17F:
			c = latinExtAFold[r-0x100]
		case r >= 0x218 && r <= 0x21B:
			c = "sstt"[r-0x218]
		case unicode.Is(unicode.Mn, r):
			continue // a combining accent
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			dst = appendSep(dst, start, &sep)
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
			continue
		default:
			c = ' '
		}
		switch c {
		case ' ':
			sep = true
		case '*':
			dst = appendSep(dst, start, &sep)
			dst = append(dst, twoLetters(r)...)
		default:
			dst = appendSep(dst, start, &sep)
			dst = append(dst, c)
		}
	}
	return dst
}

func appendSep(dst []byte, start int, sep *bool) []byte {
	if *sep && len(dst) > start {
		dst = append(dst, ' ')
	}
	*sep = false
	return dst
}

// twoLetters spells out the letters that fold to two.
func twoLetters(r rune) string {
	switch r {
	case 'Æ', 'æ':
		return "ae"
	case 'Þ', 'þ':
		return "th"
	case 'ß':
		return "ss"
	case 'Ĳ', 'ĳ':
		return "ij"
	}
	return "oe" // Œ, œ
}
