package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.ErrorCodeInfo;
import io.rapidmq.ffi.ErrorKind;
import io.rapidmq.ffi.RapidmqUniffi;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The exception hierarchy is generated from the error-code table and stays in step with it. */
class ErrorsTest {
    static {
        Native.init();
    }

    @Test
    void theGeneratedClassesMatchTheTableOfTheNativeLibrary() throws Exception {
        // Drift: the classes were generated from the table the native library carries.
        List<ErrorCodeInfo> table = RapidmqUniffi.errorCodes();
        assertTrue(table.size() >= 20);
        assertEquals(table.size(), ErrorCodes.TABLE.size());
        for (int i = 0; i < table.size(); i++) {
            ErrorCodeInfo expected = table.get(i);
            ErrorCodes.Row row = ErrorCodes.TABLE.get(i);
            assertEquals(expected.code(), row.code());
            assertEquals(expected.name(), row.name());
            assertEquals(expected.retriable(), row.retriable());
            assertEquals(expected.grpcCode(), row.grpcCode());
            assertEquals(expected.httpStatus(), row.httpStatus());
            assertEquals(expected.code(), row.exceptionClass().getField("CODE").getInt(null));
            assertEquals(expected.name(), row.exceptionClass().getField("NAME").get(null));
        }
    }

    @Test
    void everyCodeHasItsOwnClassUnderTheClassOfItsRange() {
        Set<Class<?>> classes = ErrorCodes.TABLE.stream().map(ErrorCodes.Row::exceptionClass).collect(Collectors.toSet());
        assertEquals(ErrorCodes.TABLE.size(), classes.size(), "one class per code");
        for (ErrorCodes.Row row : ErrorCodes.TABLE) {
            RapidMQException err = ErrorCodes.create(row.code(), row.name(), "detail", row.retriable());
            assertSame(row.exceptionClass(), err.getClass());
            assertEquals(row.code(), err.code());
            assertEquals(row.name(), err.codeName());
            assertEquals(row.retriable(), err.isRetriable());
            assertSame(RapidMQException.ofRange(row.code(), row.name(), "", false).getClass(),
                    err.getClass().getSuperclass(), row.name());
        }
    }

    @Test
    void classNamesFollowTheCodeNames() {
        assertEquals("TOPIC_NOT_FOUND", TopicNotFoundException.NAME);
        assertEquals(5002, StorageException.CODE);
        assertInstanceOf(BrokerException.class, new TimeoutException("slow", true));
    }

    @Test
    void unknownCodesFallBackToTheirRangeClass() {
        RapidMQException err = ErrorCodes.create(2999, "FUTURE_CODE", "future code", false);
        assertSame(TopicException.class, err.getClass());
        assertEquals(2999, err.code());
    }

    @Test
    void coreErrorKindsRefineInvalidArgument() {
        assertSame(UnsupportedException.class,
                Native.exception(1001, "INVALID_ARGUMENT", ErrorKind.UNSUPPORTED, "x", false).getClass());
        assertSame(ClosedException.class,
                Native.exception(1001, "INVALID_ARGUMENT", ErrorKind.CLOSED, "x", false).getClass());
        assertSame(InvalidArgumentException.class,
                Native.exception(1001, "INVALID_ARGUMENT", ErrorKind.INVALID_ARGUMENT, "x", false).getClass());
        assertTrue(InvalidArgumentException.class.isAssignableFrom(UnsupportedException.class));
    }

    @Test
    void messagesCarryNameCodeAndDetail() {
        RapidMQException err = ErrorCodes.create(2001, "TOPIC_NOT_FOUND", "no topic x", false);
        assertEquals("TOPIC_NOT_FOUND (2001): no topic x", err.getMessage());
        assertEquals("no topic x", err.detail());
    }
}
