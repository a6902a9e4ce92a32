import { SseParser } from './sse-parser';

describe('SseParser', () => {
  it('reads events, whatever the pieces the text arrives in', () => {
    const text =
      ': ping\n\nevent: welcome\ndata: {"type":"welcome"}\n\nevent: room.message\r\ndata: {"a":1}\r\n\r\n';
    for (const size of [1, 2, 3, 7, text.length]) {
      const parser = new SseParser();
      const events = [];
      for (let i = 0; i < text.length; i += size) {
        events.push(...parser.push(text.slice(i, i + size)));
      }
      expect([size, events]).toEqual([
        size,
        [
          { type: 'welcome', data: '{"type":"welcome"}' },
          { type: 'room.message', data: '{"a":1}' },
        ],
      ]);
    }
  });

  it('joins data lines, takes CR line ends and a BOM, skips comments, ids and empty events', () => {
    const parser = new SseParser();
    expect(parser.push('\ufeffdata:one\rdata: two\r\r')).toEqual([
      { type: 'message', data: 'one\ntwo' },
    ]);
    expect(parser.push(': comment\nid: 7\nretry: 10\nevent: nothing\n\n')).toEqual([]);
    expect(parser.push('event: close\ndata: {"code":4001}\n')).toEqual([]);
    expect(parser.push('\n')).toEqual([{ type: 'close', data: '{"code":4001}' }]);
  });

  it('keeps a CR at the end of a piece and a LF at the start of the next as one line end', () => {
    const parser = new SseParser();
    expect(parser.push('data: a\r')).toEqual([]);
    // CR LF, then CR (the empty line that ends the event), then that CR's LF.
    expect(parser.push('\n\r')).toEqual([{ type: 'message', data: 'a' }]);
    expect(parser.push('\ndata: b\n\n')).toEqual([{ type: 'message', data: 'b' }]);
  });
});
