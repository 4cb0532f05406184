import type { Message, TransportChannel } from '../../lib/transport/transport.interface';
import { AckBatcher } from '../../lib/consumer/ack-batcher';
import { Delivery } from '../../lib/consumer/delivery';

/** Records what would go on the wire; the batching decision is pure logic. */
function recorder() {
  const sent: string[] = [];
  const channel = {
    ack: (msg: Message, multiple = false) => sent.push(`ack ${msg.fields.deliveryTag}${multiple ? ' multiple' : ''}`),
    nack: (msg: Message, _multiple: boolean, requeue: boolean) => sent.push(`nack ${msg.fields.deliveryTag}${requeue ? ' requeue' : ''}`),
  } as unknown as TransportChannel;
  const acks = new AckBatcher(channel);
  const deliver = (tag: number) => {
    const delivery = new Delivery({ fields: { deliveryTag: tag } } as Message, acks);
    acks.track(delivery);
    return delivery;
  };
  return { sent, acks, deliver };
}

const tick = () => new Promise((resolve) => process.nextTick(resolve));
/** The rest of this turn of the event loop: what the batcher waits for before it writes. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('AckBatcher', () => {
  it('settles a run of finished deliveries with one multiple ack per turn of the event loop', async () => {
    const { sent, deliver } = recorder();
    const all = [1, 2, 3, 4].map(deliver);
    all.forEach((d) => d.ack());
    expect(sent).toEqual([]);
    await turn();
    expect(sent).toEqual(['ack 4 multiple']);
  });

  it('gathers the deliveries finished in separate ticks of one turn (timers firing together) into one ack', async () => {
    const { sent, deliver } = recorder();
    const all = [1, 2, 3, 4].map(deliver);
    for (const delivery of all) {
      delivery.ack();
      await tick();
    }
    expect(sent).toEqual([]);
    await turn();
    expect(sent).toEqual(['ack 4 multiple']);
  });

  it('never acks past a delivery that still runs, but acks the finished ones behind it singly', async () => {
    const { sent, deliver } = recorder();
    const [d1, d2, d3, d4] = [1, 2, 3, 4].map(deliver);
    d1.ack();
    d3.ack();
    d4.ack();
    await turn();
    expect(sent).toEqual(['ack 1', 'ack 3', 'ack 4']);
    d2.ack();
    await turn();
    expect(sent).toEqual(['ack 1', 'ack 3', 'ack 4', 'ack 2']);
  });

  it('nacks at once and leaves the nacked delivery out of later multiple acks', async () => {
    const { sent, deliver } = recorder();
    const [d1, d2, d3] = [1, 2, 3].map(deliver);
    d2.requeue();
    d1.ack();
    d3.ack();
    await turn();
    expect(sent).toEqual(['nack 2 requeue', 'ack 3 multiple']);
  });

  it('sends nothing for acks still waiting when the channel closes, and excuses those deliveries', async () => {
    const returned: number[] = [];
    const sent: string[] = [];
    const channel = { ack: (msg: Message) => sent.push(`ack ${msg.fields.deliveryTag}`) } as unknown as TransportChannel;
    const acks = new AckBatcher(channel, (delivery) => returned.push(delivery.msg.fields.deliveryTag));
    const delivery = new Delivery({ fields: { deliveryTag: 7 } } as Message, acks);
    acks.track(delivery);
    delivery.ack();
    acks.close();
    await turn();
    expect(sent).toEqual([]);
    expect(returned).toEqual([7]);
  });

  it('flushes on demand before a channel closes', () => {
    const { sent, acks, deliver } = recorder();
    deliver(1).ack();
    acks.flush();
    expect(sent).toEqual(['ack 1']);
  });
});
