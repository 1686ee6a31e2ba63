//! A compiler from pcap filter expressions to classic BPF over Ethernet frames, for
//! `talosctl pcap --bpf-filter` (upstream's client compiles on its side too and sends the
//! instructions). The subset: `ip`, `ip6`, `arp`, `tcp`, `udp`, `icmp`, `icmp6`,
//! `[src|dst] host ADDR` (IPv4 or IPv6), `[tcp|udp] [src|dst] port N`, joined with
//! `and`/`&&`, `or`/`||`, `not`/`!` and parentheses; adjacent primitives mean `and`
//! (`tcp port 80`). Anything else is refused with the word that was not understood.

use std::net::IpAddr;

use anyhow::{Context as _, bail};

/// One classic BPF instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

const ETHERTYPE_IP: u32 = 0x0800;
const ETHERTYPE_IP6: u32 = 0x86dd;
const ETHERTYPE_ARP: u32 = 0x0806;
const TCP: u32 = 6;
const UDP: u32 = 17;
const ICMP: u32 = 1;
const ICMP6: u32 = 58;

/// A condition on the frame.
#[derive(Clone, Debug, PartialEq)]
enum Filter {
    /// Loads (one or two instructions), then a comparison with `k`.
    Test {
        loads: Vec<Instruction>,
        jset: bool,
        k: u32,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

fn load(code: u16, k: u32) -> Instruction {
    Instruction {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn test(loads: Vec<Instruction>, k: u32) -> Filter {
    Filter::Test {
        loads,
        jset: false,
        k,
    }
}

fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}

fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}

fn ethertype(value: u32) -> Filter {
    test(vec![load(LD_H_ABS, 12)], value)
}

fn ip_protocol(protocol: u32) -> Filter {
    and(
        ethertype(ETHERTYPE_IP),
        test(vec![load(LD_B_ABS, 23)], protocol),
    )
}

fn ip6_next_header(protocol: u32) -> Filter {
    and(
        ethertype(ETHERTYPE_IP6),
        test(vec![load(LD_B_ABS, 20)], protocol),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Src,
    Dst,
    Either,
}

fn host(address: IpAddr, direction: Direction) -> Filter {
    let words = |offset: u32, octets: &[u8]| -> Filter {
        let mut filter: Option<Filter> = None;
        for (i, chunk) in octets.chunks(4).enumerate() {
            let word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let one = test(vec![load(LD_W_ABS, offset + 4 * i as u32)], word);
            filter = Some(match filter {
                Some(previous) => and(previous, one),
                None => one,
            });
        }
        filter.unwrap_or_else(|| ethertype(0))
    };
    let (kind, src, dst, octets) = match address {
        IpAddr::V4(v4) => (ETHERTYPE_IP, 26, 30, v4.octets().to_vec()),
        IpAddr::V6(v6) => (ETHERTYPE_IP6, 22, 38, v6.octets().to_vec()),
    };
    let matched = match direction {
        Direction::Src => words(src, &octets),
        Direction::Dst => words(dst, &octets),
        Direction::Either => or(words(src, &octets), words(dst, &octets)),
    };
    and(ethertype(kind), matched)
}

fn port(protocols: &[u32], number: u32, direction: Direction) -> Filter {
    // IPv4: not a later fragment, then the port after the header's own length.
    let v4_port = |offset: u32| {
        test(
            vec![load(LDX_B_MSH, 14), load(LD_H_IND, 14 + offset)],
            number,
        )
    };
    let v6_port = |offset: u32| test(vec![load(LD_H_ABS, 54 + offset)], number);
    let either = |f: &dyn Fn(u32) -> Filter| match direction {
        Direction::Src => f(0),
        Direction::Dst => f(2),
        Direction::Either => or(f(0), f(2)),
    };
    let first_fragment = Filter::Not(Box::new(Filter::Test {
        loads: vec![load(LD_H_ABS, 20)],
        jset: true,
        k: 0x1fff,
    }));
    let mut v4: Option<Filter> = None;
    let mut v6: Option<Filter> = None;
    for &protocol in protocols {
        let one4 = test(vec![load(LD_B_ABS, 23)], protocol);
        let one6 = test(vec![load(LD_B_ABS, 20)], protocol);
        v4 = Some(v4.map_or(one4.clone(), |f| or(f, one4)));
        v6 = Some(v6.map_or(one6.clone(), |f| or(f, one6)));
    }
    let (Some(v4), Some(v6)) = (v4, v6) else {
        return ethertype(0);
    };
    or(
        and(
            and(ethertype(ETHERTYPE_IP), v4),
            and(first_fragment, either(&v4_port)),
        ),
        and(and(ethertype(ETHERTYPE_IP6), v6), either(&v6_port)),
    )
}

/// Compiles `expression` for frames captured `snap_len` bytes at a time.
pub fn compile(expression: &str, snap_len: u32) -> anyhow::Result<Vec<Instruction>> {
    let tokens = tokenize(expression);
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let mut parser = Parser { tokens, at: 0 };
    let filter = parser.expression()?;
    if let Some(extra) = parser.peek() {
        bail!("BPF filter {expression:?}: unexpected {extra:?}");
    }
    generate(&filter, snap_len)
}

fn tokenize(expression: &str) -> Vec<String> {
    let spaced = expression
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace("&&", " and ")
        .replace("||", " or ")
        .replace('!', " not ");
    spaced.split_whitespace().map(str::to_lowercase).collect()
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expression(&mut self) -> anyhow::Result<Filter> {
        let mut filter = self.term()?;
        while self.peek() == Some("or") {
            self.at += 1;
            filter = or(filter, self.term()?);
        }
        Ok(filter)
    }

    fn term(&mut self) -> anyhow::Result<Filter> {
        let mut filter = self.factor()?;
        loop {
            match self.peek() {
                Some("and") => {
                    self.at += 1;
                    filter = and(filter, self.factor()?);
                }
                // Adjacent primitives: `tcp port 80`.
                Some(token) if token != "or" && token != ")" => {
                    filter = and(filter, self.factor()?);
                }
                _ => return Ok(filter),
            }
        }
    }

    fn factor(&mut self) -> anyhow::Result<Filter> {
        match self.next().as_deref() {
            Some("not") => Ok(Filter::Not(Box::new(self.factor()?))),
            Some("(") => {
                let inner = self.expression()?;
                match self.next().as_deref() {
                    Some(")") => Ok(inner),
                    _ => bail!("BPF filter: missing ')'"),
                }
            }
            Some(word) => self.primitive(word),
            None => bail!("BPF filter: an expression ends too early"),
        }
    }

    fn primitive(&mut self, word: &str) -> anyhow::Result<Filter> {
        match word {
            "ip" => Ok(ethertype(ETHERTYPE_IP)),
            "ip6" => Ok(ethertype(ETHERTYPE_IP6)),
            "arp" => Ok(ethertype(ETHERTYPE_ARP)),
            "icmp" => Ok(ip_protocol(ICMP)),
            "icmp6" => Ok(ip6_next_header(ICMP6)),
            "tcp" | "udp" => {
                let protocol = if word == "tcp" { TCP } else { UDP };
                if matches!(self.peek(), Some("port" | "src" | "dst")) {
                    let direction = self.direction();
                    self.expect("port")?;
                    return Ok(port(&[protocol], self.port_number()?, direction));
                }
                Ok(or(ip_protocol(protocol), ip6_next_header(protocol)))
            }
            "src" | "dst" => {
                self.at -= 1;
                let direction = self.direction();
                match self.next().as_deref() {
                    Some("host") => Ok(host(self.address()?, direction)),
                    Some("port") => Ok(port(&[TCP, UDP], self.port_number()?, direction)),
                    other => {
                        bail!("BPF filter: expected host or port after {word}, found {other:?}")
                    }
                }
            }
            "host" => Ok(host(self.address()?, Direction::Either)),
            "port" => Ok(port(&[TCP, UDP], self.port_number()?, Direction::Either)),
            other => bail!(
                "BPF filter: {other:?} is not understood (supported: ip, ip6, arp, tcp, udp, icmp, icmp6, [src|dst] host ADDR, [tcp|udp] [src|dst] port N, and, or, not, parentheses)"
            ),
        }
    }

    fn direction(&mut self) -> Direction {
        match self.peek() {
            Some("src") => {
                self.at += 1;
                Direction::Src
            }
            Some("dst") => {
                self.at += 1;
                Direction::Dst
            }
            _ => Direction::Either,
        }
    }

    fn expect(&mut self, word: &str) -> anyhow::Result<()> {
        match self.next() {
            Some(found) if found == word => Ok(()),
            other => bail!("BPF filter: expected {word:?}, found {other:?}"),
        }
    }

    fn address(&mut self) -> anyhow::Result<IpAddr> {
        let text = self.next().context("BPF filter: host needs an address")?;
        text.parse()
            .with_context(|| format!("BPF filter: {text:?} is not an IP address"))
    }

    fn port_number(&mut self) -> anyhow::Result<u32> {
        let text = self.next().context("BPF filter: port needs a number")?;
        let number: u16 = text
            .parse()
            .with_context(|| format!("BPF filter: {text:?} is not a port number"))?;
        Ok(u32::from(number))
    }
}

/// Where a jump goes.
#[derive(Clone, Copy)]
enum Target {
    Accept,
    Reject,
    /// A label, placed later.
    Label(usize),
}

struct Generator {
    code: Vec<(Instruction, Option<(Target, Target)>)>,
    labels: Vec<Option<usize>>,
}

impl Generator {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn place(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }

    fn emit(&mut self, filter: &Filter, yes: Target, no: Target) {
        match filter {
            Filter::Test { loads, jset, k } => {
                for load in loads {
                    self.code.push((*load, None));
                }
                let code = if *jset { JSET_K } else { JEQ_K };
                self.code.push((load(code, *k), Some((yes, no))));
            }
            Filter::And(a, b) => {
                let second = self.label();
                self.emit(a, Target::Label(second), no);
                self.place(second);
                self.emit(b, yes, no);
            }
            Filter::Or(a, b) => {
                let second = self.label();
                self.emit(a, yes, Target::Label(second));
                self.place(second);
                self.emit(b, yes, no);
            }
            Filter::Not(inner) => self.emit(inner, no, yes),
        }
    }
}

fn generate(filter: &Filter, snap_len: u32) -> anyhow::Result<Vec<Instruction>> {
    let mut generator = Generator {
        code: Vec::new(),
        labels: Vec::new(),
    };
    generator.emit(filter, Target::Accept, Target::Reject);
    let accept = generator.code.len();
    let reject = accept + 1;
    let resolve = |target: Target, at: usize| -> anyhow::Result<u8> {
        let destination = match target {
            Target::Accept => accept,
            Target::Reject => reject,
            Target::Label(label) => generator.labels[label].context("unplaced label")?,
        };
        u8::try_from(destination - at - 1).context("BPF filter too long for a jump")
    };
    let mut program = Vec::with_capacity(generator.code.len() + 2);
    for (at, (instruction, jumps)) in generator.code.iter().enumerate() {
        let mut instruction = *instruction;
        if let Some((yes, no)) = jumps {
            instruction.jt = resolve(*yes, at)?;
            instruction.jf = resolve(*no, at)?;
        }
        program.push(instruction);
    }
    program.push(load(RET_K, snap_len));
    program.push(load(RET_K, 0));
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program` on `frame` as the kernel would (the subset the compiler emits); a load
    /// past the frame's end rejects it.
    fn accepts(program: &[Instruction], frame: &[u8]) -> bool {
        let (mut a, mut x, mut pc) = (0u32, 0usize, 0usize);
        let read = |at: usize, n: usize| {
            frame
                .get(at..at + n)
                .map(|bytes| bytes.iter().fold(0u32, |w, &b| w << 8 | u32::from(b)))
        };
        loop {
            let i = program[pc];
            let k = i.k as usize;
            let loaded = match i.code {
                LD_W_ABS => read(k, 4),
                LD_H_ABS => read(k, 2),
                LD_B_ABS => read(k, 1),
                LD_H_IND => read(k + x, 2),
                LDX_B_MSH => read(k, 1).map(|b| {
                    x = ((b & 0xf) * 4) as usize;
                    a
                }),
                JEQ_K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf });
                    Some(a)
                }
                JSET_K => {
                    pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf });
                    Some(a)
                }
                RET_K => return i.k != 0,
                _ => panic!("unexpected instruction {i:?}"),
            };
            match loaded {
                Some(value) => a = value,
                None => return false,
            }
            pc += 1;
        }
    }

    /// An Ethernet + IPv4 frame with the given protocol and ports.
    fn ipv4(protocol: u8, src: [u8; 4], dst: [u8; 4], ports: (u16, u16)) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, protocol, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&ports.0.to_be_bytes());
        frame.extend_from_slice(&ports.1.to_be_bytes());
        frame.extend_from_slice(&[0; 16]);
        frame
    }

    #[test]
    fn protocols_hosts_and_ports_select_their_frames() {
        let ping = ipv4(1, [10, 0, 0, 1], [10, 0, 0, 2], (0x0800, 0));
        let web = ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], (40000, 80));
        let dns = ipv4(17, [10, 0, 0, 3], [10, 0, 0, 1], (53, 40000));
        let cases: [(&str, [bool; 3]); 9] = [
            ("icmp", [true, false, false]),
            ("tcp", [false, true, false]),
            ("tcp port 80", [false, true, false]),
            ("udp src port 53", [false, false, true]),
            ("port 53 or port 80", [false, true, true]),
            ("not icmp and host 10.0.0.2", [false, true, false]),
            ("dst host 10.0.0.1", [false, false, true]),
            ("!(tcp || udp)", [true, false, false]),
            ("ip6", [false, false, false]),
        ];
        for (expression, expected) in cases {
            let program = compile(expression, 65_536).unwrap();
            let got = [&ping, &web, &dns].map(|frame| accepts(&program, frame));
            assert_eq!(got, expected, "{expression}");
        }
        assert!(compile("", 65_536).unwrap().is_empty());
    }

    #[test]
    fn what_is_not_understood_is_named() {
        let error = |e: &str| format!("{:#}", compile(e, 65_536).unwrap_err());
        assert!(error("vlan 10").contains("\"vlan\" is not understood"));
        assert!(error("host nowhere").contains("not an IP address"));
        assert!(error("tcp port 99999").contains("not a port number"));
        assert!(error("(icmp").contains("missing ')'"));
        assert!(error("icmp and").contains("ends too early"));
    }
}
