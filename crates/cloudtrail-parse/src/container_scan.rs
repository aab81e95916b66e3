//! Finding where a JSON object or array ends, 64 bytes at a time.
//!
//! The framer ([`crate::decode::RecordFramer`]) must find the end of each record before the
//! record reader parses it, on a pass that reads every byte of a log. Rather than walking the
//! record byte by byte (in a string or not, escaped or not, how deep), each 64-byte block is
//! classified at once
//! into bit masks (quotes, backslashes, openers, closers), the escaped bytes and the bytes
//! inside strings are derived from those masks with a few integer operations (the method of
//! simdjson's stage 1: Langdale and Lemire, "Parsing Gigabytes of JSON per Second", 2019), and
//! only the brackets outside strings are visited one by one.
//!
//! A backslash escapes the byte after it wherever it stands. Inside strings that is JSON's
//! rule; outside them JSON has no backslash at all, and the record reader rejects the record
//! that has one.
//!
//! The masks come from AVX2 where the CPU has it (checked at run time), from SSE2 on other
//! x86_64 CPUs (part of its baseline, so always present) and from a portable loop elsewhere;
//! all give the same masks (tested), so the framing is the same on every target.

/// Bytes per block.
pub const BLOCK: usize = 64;

/// Even bit positions.
const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// Where a container scan stands between blocks.
#[derive(Debug, Clone)]
pub struct ContainerScan {
    /// All ones when the previous block ended inside a string.
    in_string: u64,
    /// 1 when the first byte of the next block is escaped by a backslash ending this one.
    escaped_next: u64,
    /// Containers open.
    depth: usize,
    /// The most containers that may be open at once.
    max_depth: usize,
}

/// What a block showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The container closes at this offset in the block: it ends just after it.
    End(usize),
    /// More than `max_depth` containers were open at once.
    TooDeep,
    /// The container goes on past this block.
    More,
}

impl ContainerScan {
    /// A scan of a container whose opening bracket is the first byte of the first block, in
    /// which at most `max_depth` containers (itself included) may be open at once.
    pub fn new(max_depth: usize) -> Self {
        Self {
            in_string: 0,
            escaped_next: 0,
            depth: 0,
            max_depth,
        }
    }

    /// Scans the next 64 bytes of the container.
    #[inline]
    pub fn block(&mut self, block: &[u8; BLOCK]) -> Step {
        self.step(Masks::of(block))
    }

    /// Scans the whole blocks at the start of `data` in turn until the container ends, or
    /// nests too deep, or no whole block is left. Gives the offset of the block the scan
    /// stopped in (of the first byte not scanned, when it goes on) and what that block showed.
    pub fn blocks(&mut self, data: &[u8]) -> (usize, Step) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { self.blocks_avx2(data) };
        }
        self.blocks_with::<Baseline>(data)
    }

    /// [`ContainerScan::blocks`] with the masks of AVX2 (32 bytes at a time, against SSE2's
    /// 16), on the pass that reads every byte of a log.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn blocks_avx2(&mut self, data: &[u8]) -> (usize, Step) {
        self.blocks_with::<Avx2>(data)
    }

    #[inline(always)]
    fn blocks_with<C: Classify>(&mut self, data: &[u8]) -> (usize, Step) {
        let mut at = 0;
        while let Some(block) = data.get(at..at + BLOCK) {
            let block = block.try_into().expect("a slice of BLOCK bytes");
            match self.step(C::masks(block)) {
                Step::More => at += BLOCK,
                step => return (at, step),
            }
        }
        (at, Step::More)
    }

    /// Follows the container through one block, given the block's masks.
    #[inline(always)]
    fn step(&mut self, masks: Masks) -> Step {
        let escaped = self.escaped(masks.backslash);
        let quotes = masks.quote & !escaped;
        // Bytes from each opening quote up to (not including) its closing quote.
        let inside = prefix_xor(quotes) ^ self.in_string;
        self.in_string = ((inside as i64) >> 63) as u64;
        let mut brackets = (masks.open | masks.close) & !inside & !escaped;
        while brackets != 0 {
            let at = brackets.trailing_zeros() as usize;
            brackets &= brackets - 1;
            if masks.open & (1 << at) != 0 {
                self.depth += 1;
                if self.depth > self.max_depth {
                    return Step::TooDeep;
                }
            } else {
                // Never below zero: the scan starts on an opening bracket and stops at the
                // closer that matches it.
                self.depth -= 1;
                if self.depth == 0 {
                    return Step::End(at);
                }
            }
        }
        Step::More
    }

    /// The bytes of the block that a backslash escapes (an odd run of backslashes escapes the
    /// byte after it; an even run escapes only itself), carrying a run that ends the block over
    /// to the next one.
    fn escaped(&mut self, backslash: u64) -> u64 {
        if backslash == 0 {
            return std::mem::take(&mut self.escaped_next);
        }
        // A backslash that is itself escaped starts nothing.
        let backslash = backslash & !self.escaped_next;
        let follows_backslash = (backslash << 1) | self.escaped_next;
        // Runs that start on an odd bit, added to the backslashes, carry through their run and
        // flip the parity of what follows it.
        let odd_starts = backslash & !EVEN_BITS & !follows_backslash;
        let (runs_from_even, carried) = odd_starts.overflowing_add(backslash);
        self.escaped_next = u64::from(carried);
        (EVEN_BITS ^ (runs_from_even << 1)) & follows_backslash
    }
}

/// Each byte of `x` xored with every byte before it, bit by bit: 1 from an odd quote up to
/// the next one.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// How a block's masks are made: [`Baseline`] everywhere, [`Avx2`] where the CPU has it.
trait Classify {
    fn masks(block: &[u8; BLOCK]) -> Masks;
}

/// SSE2 on x86_64 (in its baseline), the portable loop elsewhere.
struct Baseline;

impl Classify for Baseline {
    #[inline(always)]
    fn masks(block: &[u8; BLOCK]) -> Masks {
        Masks::of(block)
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Classify for Avx2 {
    #[inline(always)]
    fn masks(block: &[u8; BLOCK]) -> Masks {
        // SAFETY: only scans that checked the CPU for AVX2 use this (`blocks_avx2`).
        unsafe { Masks::of_avx2(block) }
    }
}

/// One bit per byte of a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    /// `{` or `[`.
    open: u64,
    /// `}` or `]`.
    close: u64,
}

impl Masks {
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; BLOCK]) -> Self {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut masks = Self::default();
        for lane in 0..BLOCK / 16 {
            // SAFETY: SSE2 is part of x86_64's baseline; the load reads 16 bytes at
            // 16 * lane < BLOCK, inside `block`, and needs no alignment.
            let [quote, backslash, open, close] = unsafe {
                let bytes = _mm_loadu_si128(block.as_ptr().add(16 * lane).cast::<__m128i>());
                // `[` and `{` differ only in 0x20, as do `]` and `}`; no other byte becomes
                // `{` or `}` with 0x20 set.
                let folded = _mm_or_si128(bytes, _mm_set1_epi8(0x20));
                let bits = |v, byte: u8| {
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8))) as u16
                };
                [
                    bits(bytes, b'"'),
                    bits(bytes, b'\\'),
                    bits(folded, b'{'),
                    bits(folded, b'}'),
                ]
            };
            masks.add(16 * lane, [quote, backslash, open, close].map(u64::from));
        }
        masks
    }

    /// The same masks with AVX2, 32 bytes at a time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn of_avx2(block: &[u8; BLOCK]) -> Self {
        use std::arch::x86_64::{
            __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
            _mm256_set1_epi8,
        };
        let mut masks = Self::default();
        for half in 0..BLOCK / 32 {
            // SAFETY: the load reads 32 bytes at 32 * half < BLOCK, inside `block`, and needs
            // no alignment.
            let bytes =
                unsafe { _mm256_loadu_si256(block.as_ptr().add(32 * half).cast::<__m256i>()) };
            // `{` and `[` differ only in 0x20, as do `}` and `]` (see `of`).
            let folded = _mm256_or_si256(bytes, _mm256_set1_epi8(0x20));
            let quote =
                _mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(b'"' as i8)));
            let backslash =
                _mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(b'\\' as i8)));
            let open =
                _mm256_movemask_epi8(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8(b'{' as i8)));
            let close =
                _mm256_movemask_epi8(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8(b'}' as i8)));
            masks.add(
                32 * half,
                [quote, backslash, open, close].map(|m| u64::from(m as u32)),
            );
        }
        masks
    }

    /// Adds the masks of the bytes from `shift` on: quotes, backslashes, openers, closers.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn add(&mut self, shift: usize, [quote, backslash, open, close]: [u64; 4]) {
        self.quote |= quote << shift;
        self.backslash |= backslash << shift;
        self.open |= open << shift;
        self.close |= close << shift;
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; BLOCK]) -> Self {
        Self::portable(block)
    }

    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn portable(block: &[u8; BLOCK]) -> Self {
        let mut masks = Self::default();
        for (at, &byte) in block.iter().enumerate() {
            let bit = 1u64 << at;
            match byte {
                b'"' => masks.quote |= bit,
                b'\\' => masks.backslash |= bit,
                b'{' | b'[' => masks.open |= bit,
                b'}' | b']' => masks.close |= bit,
                _ => {}
            }
        }
        masks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of the container at the start of `text` found byte by byte: `Ok(Some(len))`,
    /// `Ok(None)` when it does not end, `Err(())` when it nests deeper than `max_depth`.
    /// As in the scan, a backslash escapes the next byte wherever it is.
    fn reference(text: &[u8], max_depth: usize) -> Result<Option<usize>, ()> {
        let (mut depth, mut in_string, mut escaped) = (0, false, false);
        for (at, &byte) in text.iter().enumerate() {
            if escaped {
                escaped = false;
                continue;
            }
            if byte == b'\\' {
                escaped = true;
                continue;
            }
            if in_string {
                in_string = byte != b'"';
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > max_depth {
                        return Err(());
                    }
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(Some(at + 1));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The same, block by block (the text padded with spaces to whole blocks).
    fn by_blocks(text: &[u8], max_depth: usize) -> Result<Option<usize>, ()> {
        let mut scan = ContainerScan::new(max_depth);
        for (index, chunk) in text.chunks(BLOCK).enumerate() {
            let mut block = [b' '; BLOCK];
            block[..chunk.len()].copy_from_slice(chunk);
            match scan.block(&block) {
                Step::End(at) => return Ok(Some(index * BLOCK + at + 1)),
                Step::TooDeep => return Err(()),
                Step::More => {}
            }
        }
        Ok(None)
    }

    /// A deterministic generator (xorshift), so failures can be replayed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn agrees_with_a_byte_by_byte_scan() {
        // Runs of backslashes of every length land on every offset of a block, and across
        // block ends, between quotes and brackets.
        let alphabet = b"\\\\\\\"\"{}[]a :,";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = 1 + (rng.next() % 300) as usize;
            let mut text = vec![b'{'];
            text.extend((1..len).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]));
            let max_depth = 1 + (rng.next() % 6) as usize;
            assert_eq!(
                by_blocks(&text, max_depth),
                reference(&text, max_depth),
                "{:?}",
                String::from_utf8_lossy(&text)
            );
        }
    }

    #[test]
    fn finds_the_end_of_real_shaped_records() {
        let record = br#"{"a":"x}\"{","b":[{"c":"\\"},{}],"d":"\\\"]"}"#;
        for pad in 0..2 * BLOCK {
            let mut text = vec![b'['; 1];
            text.extend(std::iter::repeat_n(b' ', pad));
            text.extend_from_slice(record);
            text.push(b']');
            text.extend_from_slice(b",{\"next\":1}");
            assert_eq!(by_blocks(&text, 100), Ok(Some(pad + record.len() + 2)));
            assert_eq!(by_blocks(&text, 1), Err(()));
        }
    }

    #[test]
    fn whole_blocks_scan_as_block_by_block() {
        // Dense brackets, and sparse ones.
        let alphabets: [&[u8]; 2] = [b"\\\"{}[]a :,", b"\\\"{}[]abcdefghijklmnopqrstuvwxyz :,"];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..10_000 {
            let alphabet = alphabets[(rng.next() % 2) as usize];
            let blocks = 1 + (rng.next() % 6) as usize;
            let mut text = vec![b'{'];
            text.extend(
                (1..blocks * BLOCK)
                    .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]),
            );
            let max_depth = 1 + (rng.next() % 6) as usize;
            let expected = match by_blocks(&text, max_depth) {
                Ok(Some(end)) => ((end - 1) / BLOCK * BLOCK, Step::End((end - 1) % BLOCK)),
                Ok(None) => (text.len(), Step::More),
                Err(()) => {
                    // The block that went too deep: the first whose prefix does.
                    let at = (1..=blocks)
                        .find(|&n| by_blocks(&text[..n * BLOCK], max_depth).is_err())
                        .expect("some prefix goes too deep");
                    ((at - 1) * BLOCK, Step::TooDeep)
                }
            };
            let mut scan = ContainerScan::new(max_depth);
            assert_eq!(
                scan.blocks(&text),
                expected,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
        }
    }

    #[test]
    fn masks_match_the_portable_ones() {
        let mut rng = Rng(7);
        for _ in 0..10_000 {
            let mut block = [0u8; BLOCK];
            for byte in &mut block {
                // Every byte value, most of all those next to the ones classified.
                *byte = match rng.next() % 3 {
                    0 => rng.next() as u8,
                    1 => b"\"\\{}[]"[(rng.next() % 6) as usize],
                    _ => b"\"\\{}[]"[(rng.next() % 6) as usize] ^ (1 << (rng.next() % 8)),
                };
            }
            assert_eq!(Masks::of(&block), Masks::portable(&block));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                assert_eq!(unsafe { Masks::of_avx2(&block) }, Masks::portable(&block));
            }
        }
    }
}
