// Drives the Node client ali-ons against a NameServer and broker: one producer send, one consumer receipt.
// Usage: node ali_ons_roundtrip.js <namesrv host:port> <topic>; prints one JSON line with what happened.
const { Producer, Consumer, Message } = require('ali-ons');
const httpclient = require('urllib');

(async () => {
  const [namesrv, topic] = process.argv.slice(2);
  const opts = { httpclient, nameSrv: [namesrv], accessKeyId: 'mq', accessKeySecret: 'mq' };
  const producer = new Producer(Object.assign({ producerGroup: 'NodeProducerGroup' }, opts));
  await producer.ready();
  const consumer = new Consumer(Object.assign(
    { consumerGroup: 'NodeConsumerGroup', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, opts));
  const received = [];
  consumer.subscribe(topic, '*', async msg => {
    received.push({ body: msg.body.toString(), tags: msg.tags, topic: msg.topic });
  });
  await consumer.ready();
  const result = await producer.send(new Message(topic, 'NodeTag', 'hello from node'));
  const deadline = Date.now() + 40000;
  while (received.length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 100));
  console.log(JSON.stringify({ sendStatus: result.sendStatus, msgId: result.msgId, received }));
  await consumer.close();
  await producer.close();
  process.exit(0);
})().catch(err => { console.log(JSON.stringify({ error: String(err && err.stack || err) })); process.exit(1); });
