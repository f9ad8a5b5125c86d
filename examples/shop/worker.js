// A background worker: it says what it does every ten seconds.
console.log('worker ready');
setInterval(() => console.log('worker: nothing in the queue'), 10_000);
